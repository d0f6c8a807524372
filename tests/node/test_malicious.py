"""A malicious minority cannot change an opened result unnoticed (issue 13, findings 3, 5).

Every test runs real MPyC party processes (node.mpc.party); the deviating party is
tests/node/evil_party.py, the same party with one deviation patched in."""

from __future__ import annotations

from fractions import Fraction

import pytest
import trio

from dnode.node.errors import CheatingDetectedError, MpcError
from dnode.node.mpc import influence
from dnode.node.mpc import sharing as S
from dnode.node.mpc.executor import MpcJob, MpcResult, SubprocessExecutor, free_port
from dnode.node.mpc.malicious import coefficients, degree_check

OWNERS = [["5", "-3", "12"], ["100"], ["-7", "0", "2"]]
BL = 64
P = S.field_modulus(BL)


def _jobs(program, owner_vectors, m=3, t=1, *, checks=True, bound=None, task_id=21):
    """Jobs for m parties from per-owner vectors of field ints (already witness-extended)."""
    sh = [S.share(v, m, t, P) for v in owner_vectors]
    ports = [("127.0.0.1", free_port()) for _ in range(m)]
    return [
        MpcJob(
            task_id,
            program,
            "int",
            0,
            BL,
            i,
            ports,
            t,
            [s[i] for s in sh],
            checks=checks,
            value_bound=bound,
        )
        for i in range(m)
    ]


def _enc(owners, squares):
    return [S.encode(o, "int", 0, BL, squares=squares) for o in owners]


async def _run(jobs, evil=None, mode="", offset=0, timeout=60.0):
    """Run every party; party ``evil`` (if any) deviates with ``mode``/``offset``."""
    out: list[object] = [None] * len(jobs)

    async def one(i):
        ex = SubprocessExecutor()
        if i == evil:
            ex = SubprocessExecutor(party_args=("-m", "tests.node.evil_party", mode, str(offset)))
        try:
            out[i] = await ex.run_party(jobs[i], timeout=timeout)
        except MpcError as e:
            out[i] = e

    async with trio.open_nursery() as n:
        for i in range(len(jobs)):
            n.start_soon(one, i)
    return out


def _honest(res, evil):
    return [r for i, r in enumerate(res) if i != evil]


# ------------------------------------------------------------------ pure helpers


def test_degree_check_detects_one_wrong_share():
    sh = S.share([7, -1, 2**60], 5, 2, P)
    secrets, bad = degree_check(sh, 2, P)
    assert [S.to_signed(s, P) for s in secrets] == [7, -1, 2**60] and bad == []
    for j in range(5):  # any single party (any t of them) shifting its share is caught
        tampered = [list(v) for v in sh]
        tampered[j][1] = (tampered[j][1] + 1) % P
        assert degree_check(tampered, 2, P)[1] == [1]


def test_coefficients_are_deterministic_and_wide():
    a = coefficients(b"s" * 32, "x", 1000)
    assert list(a) == list(coefficients(b"s" * 32, "x", 1000))
    assert list(a) != list(coefficients(b"s" * 32, "y", 1000))
    assert all(0 <= v < 2**62 for v in a) and max(a) > 2**61


@pytest.mark.parametrize("squares", [False, True])
def test_witness_layout_roundtrip(squares):
    b = influence.declared_bound(BL, S.DEFAULT_MAX_VALUES, squares)
    vals = [b, -b, 0, 17]
    vec = influence.with_witness(vals, b, squares)
    assert influence.split(len(vec), b, squares) == 4
    assert set(vec[4:]) <= {0, 1}
    with pytest.raises(ValueError):
        influence.witness([b + 1], b, squares)
    with pytest.raises(ValueError):
        influence.split(len(vec) + 1, b, squares)


# ------------------------------------------------------------------ honest runs


@pytest.mark.parametrize("program", ["mpc.sum", "mpc.variance"])
def test_checked_session_is_correct_and_shares_a_transcript(program):
    sq = program == "mpc.variance"
    b = influence.declared_bound(BL, S.DEFAULT_MAX_VALUES, sq)
    enc = _enc(OWNERS, sq)
    res = trio.run(_run, _jobs(program, [influence.with_witness(e, b, sq) for e in enc], bound=b))
    assert all(isinstance(r, MpcResult) for r in res), res
    flat = [v for e in enc for v in e]
    assert {r.sum for r in res} == {sum(flat)} and {r.count for r in res} == {len(flat)}
    if sq:
        assert {r.sum_sq for r in res} == {sum(v * v for v in flat)}
    digests = {r.transcript for r in res}
    assert len(digests) == 1 and len(digests.pop() or "") == 64


# ------------------------------------------------------------------ finding 3


def test_semi_honest_baseline_is_silently_corrupted():
    """The attack of the review: without the checks all parties exit 0 with a wrong result."""
    enc = _enc(OWNERS, True)
    res = trio.run(_run, _jobs("mpc.variance", enc, checks=False), 2, "reshare", 600)
    assert all(isinstance(r, MpcResult) for r in res), res
    good = sum(v * v for e in enc for v in e)
    assert all(r.sum_sq != good for r in res)  # every seat would have signed a wrong value


@pytest.mark.parametrize(
    "program,mode,check",
    [
        ("mpc.variance", "reshare", "multiplication"),
        ("mpc.variance", "input", "input-sharing"),
        ("mpc.sum", "input", "input-sharing"),
        ("mpc.variance", "output", "opening"),
        ("mpc.sum", "output", "opening"),
    ],
)
@pytest.mark.parametrize("evil", [0, 2])
def test_deviating_party_is_detected(program, mode, check, evil):
    sq = program == "mpc.variance"
    res = trio.run(_run, _jobs(program, _enc(OWNERS, sq)), evil, mode, 600)
    for r in _honest(res, evil):
        assert isinstance(r, CheatingDetectedError), res
        assert f"cheating detected: {check} check failed" in str(r) and "\n" not in str(r)


def test_deviating_party_is_detected_with_five_parties():
    res = trio.run(_run, _jobs("mpc.variance", _enc(OWNERS, True), m=5, t=2), 3, "reshare", 1)
    for r in _honest(res, 3):
        assert isinstance(r, CheatingDetectedError) and "multiplication" in str(r), res


# ------------------------------------------------------------------ finding 5


def _attack_vectors(squares, forge):
    """Owner 1 shares 2**90 consistently; its witness is forged as ``forge`` says."""
    b = influence.declared_bound(BL, S.DEFAULT_MAX_VALUES, squares)
    enc = _enc(OWNERS, squares)
    vecs = [influence.with_witness(e, b, squares) for e in enc]
    big = [2**90]
    if forge == "zeros":  # plausible-looking bits of a legal value
        bad = big + influence.witness([0], b, squares)
    else:  # "fit": non-bit entries that make the recomposition hold
        wl = influence.layout(1, b, squares)
        bad = big + [0] * sum(wl)
        q1 = 2**90 + b
        bad[1] = q1 % P  # q1 = 1 * bad[1]
        bad[1 + wl[0]] = (b - 2**90) % P
    vecs[1] = bad
    return vecs, b, enc


@pytest.mark.parametrize("program", ["mpc.sum", "mpc.variance"])
@pytest.mark.parametrize("forge", ["zeros", "fit"])
def test_out_of_range_owner_is_refused_and_named(program, forge):
    sq = program == "mpc.variance"
    vecs, b, _ = _attack_vectors(sq, forge)
    res = trio.run(_run, _jobs(program, vecs, bound=b))
    for r in res:
        assert isinstance(r, CheatingDetectedError), res
        assert r.owner == 1 and "influence check failed (data owner 1)" in str(r)
        assert f"|v| <= {b}" in str(r)


def test_out_of_range_owner_moves_the_unchecked_sum():
    """Without the bound the 2**90 sharing sets the sum at will (the review's finding)."""
    enc = _enc(OWNERS, False)
    res = trio.run(_run, _jobs("mpc.sum", [enc[0], [2**90], enc[2]]))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert res[0].total() == Fraction(2**90 + sum(enc[0]) + sum(enc[2]))


# ------------------------------------------------------------------ finding 4


def _signed_contributions(owner, shares_by_seat, round=0):
    from dnode.node.mpc.commitments import seat_digests
    from dnode.node.protocol import Contribution

    dig = seat_digests(1337, CONTRACT, 9, round, owner.address, P, shares_by_seat)
    return [
        Contribution(
            1337, CONTRACT, 9, owner.address, j, P, tuple(s), round=round, commitment=tuple(dig)
        ).signed(owner)
        for j, s in enumerate(shares_by_seat)
    ]


CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_contribution_shares_are_bound_to_the_signed_commitment():
    import json

    from eth_account import Account

    from dnode.node.errors import ProtocolViolation
    from dnode.node.protocol import Contribution

    owner = Account.create()
    cs = _signed_contributions(owner, S.share([1, 2, 3], 3, 1, P))
    for c in cs:
        assert Contribution.parse("p", c.to_bytes()) == c
    obj = json.loads(cs[1].to_bytes())
    obj["shares"][0] = (obj["shares"][0] + 1) % P
    with pytest.raises(ProtocolViolation, match="do not match the owner's commitment"):
        Contribution.parse("p", json.dumps(obj).encode())
    obj = json.loads(cs[1].to_bytes())
    obj["commitment"][0] = "0x" + "00" * 32  # a forged list is not the owner's signature
    with pytest.raises(ProtocolViolation, match="not signed by its owner"):
        Contribution.parse("p", json.dumps(obj).encode())


def test_equivocating_owner_is_named_before_computing():
    """Owner 1 signs two different sharings and gives seat 2 the second one."""
    from eth_account import Account

    from dnode.node.mpc.commitments import sharing_commitment

    owners = [Account.create() for _ in range(3)]
    enc = _enc(OWNERS, False)
    sharings = [S.share(e, 3, 1, P) for e in enc]
    other = S.share([v + 1 for v in enc[1]], 3, 1, P)
    views = [[_signed_contributions(o, sh) for o, sh in zip(owners, sharings, strict=True)]] * 3
    views = [list(v) for v in views]
    views[2][1] = _signed_contributions(owners[1], other)
    ports = [("127.0.0.1", free_port()) for _ in range(3)]
    jobs = [
        MpcJob(
            22,
            "mpc.sum",
            "int",
            0,
            BL,
            i,
            ports,
            1,
            [list(v[i].shares) for v in views[i]],
            commitments=[sharing_commitment(v[i].commitment) for v in views[i]],
        )
        for i in range(3)
    ]
    res = trio.run(_run, jobs)
    for r in res:
        assert isinstance(r, MpcError) and "data owner 1 committed to different sharings" in str(r)


def test_transcript_tag_needs_the_transcript():
    from dnode.node.mpc.commitments import check_transcript_tag, transcript_tag

    t, sig = b"\x01" * 32, b"\x02" * 65
    tag = transcript_tag(t, sig)
    assert check_transcript_tag(t, sig, tag)
    assert not check_transcript_tag(b"\x03" * 32, sig, tag)  # another session
    assert not check_transcript_tag(t, b"\x04" * 65, tag)  # someone else's signature


def test_inconsistent_owner_sharing_names_the_owner():
    """Owner 2 (after an owner with no values) hands seat 1 a share off its polynomial."""
    enc = _enc(OWNERS, False)
    jobs = _jobs("mpc.sum", [enc[0], [], enc[2]])
    bad = list(jobs[1].shares[2])
    bad[1] = (bad[1] + 5) % P
    j = jobs[1]
    jobs[1] = MpcJob(j.task_id, j.program, j.kind, 0, BL, 1, j.parties, 1, [*j.shares[:2], bad])
    res = trio.run(_run, jobs)
    for r in res:
        assert isinstance(r, CheatingDetectedError) and r.owner == 2, res
        assert "input-sharing check failed (data owner 2)" in str(r)


def test_checked_session_in_a_wider_field():
    """bit_length 128: coins and openings are sized to the field, not to 64-bit values."""
    bl = 128
    p = S.field_modulus(bl)
    vals = [[2**50, -3], [7]]
    sh = [S.share(v, 3, 1, p) for v in vals]
    ports = [("127.0.0.1", free_port()) for _ in range(3)]
    jobs = [
        MpcJob(23, "mpc.variance", "int", 0, bl, i, ports, 1, [s[i] for s in sh]) for i in range(3)
    ]
    res = trio.run(_run, jobs)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert {r.sum for r in res} == {2**50 + 4} and {r.sum_sq for r in res} == {2**100 + 58}


def test_too_many_values_for_the_field_are_refused_not_wrapped():
    """secint(32) lives in a 64-bit field: 2**15 values at the widest bound could make the
    variance witness wrap modulo p, so the owner is refused instead of checked unsoundly."""
    bl = 32
    p = S.field_modulus(bl)
    b = influence.declared_bound(bl, 1, True)
    n = 2**15
    assert not influence.fits(n, b, True, p) and influence.fits(16, b, True, p)
    vecs = [influence.with_witness([1, 2], b, True), influence.with_witness([0] * n, b, True)]
    sh = [S.share(v, 3, 1, p) for v in vecs]
    ports = [("127.0.0.1", free_port()) for _ in range(3)]
    jobs = [
        MpcJob(24, "mpc.variance", "int", 0, bl, i, ports, 1, [s[i] for s in sh], value_bound=b)
        for i in range(3)
    ]
    res = trio.run(_run, jobs)
    for r in res:
        assert isinstance(r, CheatingDetectedError) and r.owner == 1, res
