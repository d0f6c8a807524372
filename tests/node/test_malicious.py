"""A malicious minority cannot change an opened result unnoticed (issue 13, findings 3, 5),
for the table programs of issue 14: sums, sums of squares and X^T X run under the Guard.

Every test runs real MPyC party processes (node.mpc.party) on jobs built from the program's
spec exactly as the node builds them; the deviating party is tests/node/evil_party.py, the same
party with one deviation patched in."""

from __future__ import annotations

from fractions import Fraction

import pytest
import trio

from dnode.node.errors import CheatingDetectedError, MpcError
from dnode.node.mpc import influence
from dnode.node.mpc import sharing as S
from dnode.node.mpc.executor import MpcJob, MpcResult, SubprocessExecutor, free_port
from dnode.node.mpc.influence import TableWitness, table_layout, table_rows, table_witness
from dnode.node.mpc.malicious import coefficients, degree_check
from dnode.scheduler.programs import Column, TaskParams

ADDRS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
A = Column("a", "int", 0, Fraction(-1000), Fraction(1000))
B = Column("b", "int", 0, Fraction(-1000), Fraction(1000))
#: per owner: rows of (a, b)
ROWS = [[(5, 1), (-3, 7), (12, -4)], [(100, 3)], [(-7, 0), (0, 9), (2, 2)]]
TWO = ("mpc.covariance", "mpc.correlation", "test.dot")


def _params(program: str, owners: int = 3) -> TaskParams:
    cols = (A, B) if program in TWO else (A,)
    return TaskParams(program, ADDRS[:owners], columns=cols)


def _values(program: str, rows: list[tuple[int, int]]) -> list[int]:
    return [v for r in rows for v in (r if program in TWO else r[:1])]


def _vectors(program: str, owners=ROWS) -> list[list[int]]:
    """What honest owners share: their rows, row-major, then their influence witness."""
    params = _params(program, len(owners))
    w = influence.task_witness(params)
    assert w is not None
    return [[*_values(program, o), *table_witness(_values(program, o), w)] for o in owners]


def _jobs(
    program, vectors, m=3, t=1, *, checks=True, witness=True, bit_length=None, tid=21, params=None
):
    params = params or _params(program, len(vectors))
    spec = params.spec
    bl = bit_length or params.bit_length
    sh = [S.share(v, m, t, S.field_modulus(bl)) for v in vectors]
    ports = [("127.0.0.1", free_port()) for _ in range(m)]
    w = influence.task_witness(params) if witness else None
    return [
        MpcJob(
            tid,
            program,
            spec.kernel,
            spec.kernel_args(params),
            spec.width(params),
            bl,
            i,
            ports,
            t,
            [s[i] for s in sh],
            checks=checks,
            witness=w,
        )  # fmt: skip
        for i in range(m)
    ]


async def _run(jobs, evil=None, mode="", offset=0, timeout=90.0):
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


def _flat(program):
    return [r for o in ROWS for r in o]


# ------------------------------------------------------------------ pure helpers


def test_degree_check_detects_one_wrong_share():
    p = S.field_modulus(64)
    sh = S.share([7, -1, 2**60], 5, 2, p)
    secrets, bad = degree_check(sh, 2, p)
    assert [S.to_signed(s, p) for s in secrets] == [7, -1, 2**60] and bad == []
    for j in range(5):  # any single party (any t of them) shifting its share is caught
        tampered = [list(v) for v in sh]
        tampered[j][1] = (tampered[j][1] + 1) % p
        assert degree_check(tampered, 2, p)[1] == [1]


def test_coefficients_are_deterministic_and_wide():
    a = coefficients(b"s" * 32, "x", 1000)
    assert list(a) == list(coefficients(b"s" * 32, "x", 1000))
    assert list(a) != list(coefficients(b"s" * 32, "y", 1000))
    assert all(0 <= v < 2**62 for v in a) and max(a) > 2**61


@pytest.mark.parametrize("level", [0, 1, 2])
def test_table_witness_layout_roundtrip(level):
    w = TableWitness((1000, 7), level)
    vals = [1000, -7, -1000, 7, 0, 0, 17, 3]
    vec = [*vals, *table_witness(vals, w)]
    assert table_rows(len(vec), w) == 4
    assert set(vec[8:]) <= {0, 1}
    assert len(vec) - 8 == sum(table_layout(4, w))
    with pytest.raises(ValueError, match="column 1 exceeds"):
        table_witness([0, 8], w)
    with pytest.raises(ValueError):
        table_rows(len(vec) + 1, w)


def test_specs_declare_what_each_owner_proves():
    assert influence.task_witness(_params("mpc.sum")) == TableWitness((1000,), 0)
    assert influence.task_witness(_params("mpc.variance")) == TableWitness((1000,), 1)
    assert influence.task_witness(_params("mpc.covariance")) == TableWitness((1000, 1000), 2)
    assert influence.task_witness(_params("mpc.median")) == TableWitness((1000,), 0)


# ------------------------------------------------------------------ honest runs


@pytest.mark.parametrize("program", ["mpc.sum", "mpc.variance", "mpc.covariance", "mpc.median"])
def test_checked_session_is_correct_and_shares_a_transcript(program):
    res = trio.run(_run, _jobs(program, _vectors(program)))
    assert all(isinstance(r, MpcResult) for r in res), res
    rows = _flat(program)
    a = [r[0] for r in rows]
    got = res[0].revealed
    assert {r.rows for r in res} == {len(rows)}
    if program == "mpc.sum":
        assert got["sum"] == [sum(a)]
    elif program == "mpc.variance":
        assert got["sum"] == [sum(a)] and got["sumsq"] == [sum(v * v for v in a)]
    elif program == "mpc.covariance":
        b = [r[1] for r in rows]
        assert got["sum"] == [sum(a), sum(b)]
        ab = sum(x * y for x, y in rows)
        assert got["gram"] == [sum(x * x for x in a), ab, ab, sum(y * y for y in b)]
    else:
        assert got["order"] == [[sorted(a)[len(a) // 2]]]
    assert all(r.revealed == got for r in res)
    digests = {r.transcript for r in res}
    assert len(digests) == 1 and len(digests.pop() or "") == 64


# ------------------------------------------------------------------ finding 3


def test_semi_honest_baseline_is_silently_corrupted():
    """The attack of the review: without the checks all parties exit 0 with a wrong result."""
    vecs = [_values("mpc.covariance", o) for o in ROWS]
    jobs = _jobs("mpc.covariance", vecs, checks=False, witness=False)
    res = trio.run(_run, jobs, 2, "reshare", 600)
    assert all(isinstance(r, MpcResult) for r in res), res
    rows = _flat("mpc.covariance")
    gram = [sum(r[i] * r[j] for r in rows) for i in (0, 1) for j in (0, 1)]
    assert all(r.revealed["gram"] != gram for r in res)  # every seat would sign a wrong value


@pytest.mark.parametrize(
    "program,mode,check",
    [
        ("mpc.variance", "reshare", "multiplication"),
        ("mpc.covariance", "reshare", "multiplication"),
        ("mpc.sum", "input", "input-sharing"),
        ("mpc.covariance", "input", "input-sharing"),
        ("mpc.median", "input", "input-sharing"),
        ("mpc.sum", "output", "opening"),
        ("mpc.variance", "output", "opening"),
        ("mpc.covariance", "output", "opening"),
        ("mpc.median", "output", "opening"),
    ],
)
@pytest.mark.parametrize("evil", [0, 2])
def test_deviating_party_is_detected(program, mode, check, evil):
    res = trio.run(_run, _jobs(program, _vectors(program)), evil, mode, 600)
    for r in _honest(res, evil):
        assert isinstance(r, CheatingDetectedError), res
        assert f"cheating detected: {check} check failed" in str(r) and "\n" not in str(r)


def test_deviating_party_is_detected_with_five_parties():
    jobs = _jobs("mpc.covariance", _vectors("mpc.covariance"), m=5, t=2)
    res = trio.run(_run, jobs, 3, "reshare", 1)
    for r in _honest(res, 3):
        assert isinstance(r, CheatingDetectedError) and "multiplication" in str(r), res


# ------------------------------------------------------------------ finding 5


def _bits(qs, ells, p):
    out = []
    for q, ell in zip(qs, ells, strict=True):
        out += [((q % p) >> j) & 1 for j in range(ell)]
    return out


@pytest.mark.parametrize("program", ["mpc.sum", "mpc.variance", "mpc.covariance"])
@pytest.mark.parametrize("forge", ["zeros", "fit"])
def test_out_of_range_owner_is_refused_and_named(program, forge):
    """Owner 1 shares 2**90 (consistently) in column a; its witness is forged."""
    params = _params(program)
    w = influence.task_witness(params)
    p = S.field_modulus(params.bit_length)
    vecs = _vectors(program)
    big = [2**90, 0] if program in TWO else [2**90]
    if forge == "zeros":  # plausible-looking bits: those of a legal row of zeros
        bad = big + table_witness([0] * len(big), w)
    else:  # "fit": entries that make q1's and q2's recomposition hold (not bits)
        ells = table_layout(1, w)
        bad = big + [0] * sum(ells)
        bad[len(big)] = (2**90 + 1000) % p
        bad[len(big) + ells[0]] = (1000 - 2**90) % p
    vecs[1] = bad
    res = trio.run(_run, _jobs(program, vecs))
    for r in res:
        assert isinstance(r, CheatingDetectedError), res
        assert r.owner == 1 and "influence check failed (data owner 1)" in str(r)
        assert "|v| <= 1000" in str(r)


def _cross_product_attack(p):
    """Rows (u, 1), (-u, -1) with u**2 = k (mod p), k <= B**2 not a square: column a has the
    legal sums S1 = 0, S2 = 2k, but the cross product S_ab = 2u is a huge field element."""
    k = 2
    while True:
        u = pow(k, (p + 1) // 4, p)  # p = 3 mod 4: a square root if k is a residue
        if u * u % p == k and int(k**0.5) ** 2 != k:
            break
        k += 1
    return [u, 1, p - u, p - 1], k, u


def test_owner_cannot_move_a_cross_product():
    """The per-column bounds alone let an owner set X^T X's off-diagonal at will; the pair
    checks (S_aa + S_bb +- 2 S_ab >= 0) refuse it and name the owner."""
    params = _params("mpc.covariance")
    p = S.field_modulus(params.bit_length)
    w = influence.task_witness(params)
    rows, k, u = _cross_product_attack(p)
    # without checks: the revealed cross product is whatever the owner chose
    plain = [_values("mpc.covariance", ROWS[0]), rows, _values("mpc.covariance", ROWS[2])]
    res = trio.run(_run, _jobs("mpc.covariance", plain, checks=False, witness=False))
    assert all(isinstance(r, MpcResult) for r in res), res
    honest = sum(x * y for o in (ROWS[0], ROWS[2]) for x, y in o)
    assert S.to_signed((res[0].revealed["gram"][1] - honest) % p, p) == S.to_signed(2 * u % p, p)
    # with checks: its witness states the legal per-column sums and a zero cross product
    n, b = 2, 1000
    qs = [n * b, n * b, 2 * k, n * b * b - 2 * k, n * 2 * k]  # column a
    qs += [n * b, n * b, 2, n * b * b - 2, n * 2]  # column b
    qs += [2 * k + 2, 2 * k + 2]  # the pair, as if S_ab = 0
    vecs = _vectors("mpc.covariance")
    vecs[1] = rows + _bits(qs, table_layout(2, w), p)
    res = trio.run(_run, _jobs("mpc.covariance", vecs))
    for r in res:
        assert isinstance(r, CheatingDetectedError) and r.owner == 1, res
        assert "influence check failed (data owner 1)" in str(r)


def test_out_of_range_owner_moves_the_unchecked_sum():
    """Without the bound one out-of-range sharing sets the sum at will (the review's finding)."""
    big = 10**12  # |v| <= 1000 declared
    vecs = [_values("mpc.sum", ROWS[0]), [big], _values("mpc.sum", ROWS[2])]
    res = trio.run(_run, _jobs("mpc.sum", vecs, witness=False))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert res[0].revealed["sum"] == [big + sum(vecs[0]) + sum(vecs[2])]


# ------------------------------------------------------------------ finding 4

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _signed_contributions(owner, shares_by_seat, p, round=0):
    from dnode.node.mpc.commitments import seat_digests
    from dnode.node.protocol import Contribution

    dig = seat_digests(1337, CONTRACT, 9, round, owner.address, p, shares_by_seat)
    return [
        Contribution(
            1337, CONTRACT, 9, owner.address, j, p, tuple(s), round=round, commitment=tuple(dig)
        ).signed(owner)
        for j, s in enumerate(shares_by_seat)
    ]


def test_contribution_shares_are_bound_to_the_signed_commitment():
    import json

    from eth_account import Account

    from dnode.node.errors import ProtocolViolation
    from dnode.node.protocol import Contribution

    p = S.field_modulus(64)
    owner = Account.create()
    cs = _signed_contributions(owner, S.share([1, 2, 3], 3, 1, p), p)
    for c in cs:
        assert Contribution.parse("p", c.to_bytes()) == c
    obj = json.loads(cs[1].to_bytes())
    obj["shares"][0] = (obj["shares"][0] + 1) % p
    with pytest.raises(ProtocolViolation, match="do not match the owner's commitment"):
        Contribution.parse("p", json.dumps(obj).encode())
    obj = json.loads(cs[1].to_bytes())
    obj["commitment"][0] = "0x" + "00" * 32  # a forged list is not the owner's signature
    with pytest.raises(ProtocolViolation, match="not signed by its owner"):
        Contribution.parse("p", json.dumps(obj).encode())


def test_equivocating_owner_is_named_before_computing():
    """Owner 1 signs two different sharings and gives seat 2 the second one."""
    import dataclasses

    from eth_account import Account

    from dnode.node.mpc.commitments import sharing_commitment

    vecs = _vectors("mpc.sum")
    jobs = _jobs("mpc.sum", vecs)
    p = S.field_modulus(jobs[0].bit_length)
    owners = [Account.create() for _ in range(3)]
    sharings = [S.share(v, 3, 1, p) for v in vecs]
    other = S.share(_vectors("mpc.sum", [ROWS[0], [(101, 0)], ROWS[2]])[1], 3, 1, p)
    views = [[_signed_contributions(o, sh, p) for o, sh in zip(owners, sharings, strict=True)]]
    views = [list(views[0]) for _ in range(3)]
    views[2][1] = _signed_contributions(owners[1], other, p)
    jobs = [
        dataclasses.replace(
            j,
            shares=[list(v[i].shares) for v in views[i]],
            commitments=[sharing_commitment(v[i].commitment) for v in views[i]],
        )
        for i, j in enumerate(jobs)
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
    """Owner 2 (after an owner with no rows) hands seat 1 a share off its polynomial."""
    import dataclasses

    vecs = _vectors("mpc.sum", [ROWS[0], [], ROWS[2]])
    jobs = _jobs("mpc.sum", vecs)
    p = S.field_modulus(jobs[0].bit_length)
    bad = list(jobs[1].shares[2])
    bad[1] = (bad[1] + 5) % p
    jobs[1] = dataclasses.replace(jobs[1], shares=[*jobs[1].shares[:2], bad])
    res = trio.run(_run, jobs)
    for r in res:
        assert isinstance(r, CheatingDetectedError) and r.owner == 2, res
        assert "input-sharing check failed (data owner 2)" in str(r)


def test_checked_session_in_a_wider_field():
    """bit_length 128: coins and openings are sized to the field, not to 64-bit values."""
    vecs = [[2**50, -3], [7]]
    res = trio.run(_run, _jobs("mpc.variance", vecs, witness=False, bit_length=128))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert {tuple(r.revealed["sum"]) for r in res} == {(2**50 + 4,)}
    assert {tuple(r.revealed["sumsq"]) for r in res} == {(2**100 + 58,)}


def test_too_many_rows_for_the_field_are_refused_not_wrapped():
    """secint(16) lives in a 48-bit field: 2**15 rows at |v| <= 1000 could make the variance
    witness wrap modulo p, so the owner is refused instead of checked unsoundly."""
    bl, n = 16, 2**15
    p = S.field_modulus(bl)
    w = TableWitness((1000,), 1)
    assert not influence.table_fits(n, w, p) and influence.table_fits(3, w, p)
    vecs = [[1, 2, *table_witness([1, 2], w)], [0] * n + table_witness([0] * n, w)]
    res = trio.run(_run, _jobs("mpc.variance", vecs, bit_length=bl))
    for r in res:
        assert isinstance(r, CheatingDetectedError) and r.owner == 1, res
