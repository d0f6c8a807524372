"""The token math of the PSI family (scheduler.programs.psi.tokens): threshold combination
equals the direct OPRF value, a wrong partial is caught, and a seat's view holds no id."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PublicKey

from dnode.node.mpc.sharing import share
from dnode.scheduler.programs.psi import tokens as T

DOMAIN = b"task-7"
IDS = ["alice", "bob", 12345678901234567890123, "x" * 300, "", "ünïcode"]


def _add(a: bytes, b: bytes) -> bytes:
    return PublicKey.combine_keys([PublicKey(a), PublicKey(b)]).format(compressed=False)


def _partials(ids, m, t, k):
    """Every seat's partials for one owner's ids (shares of k * rho at x = 1..m)."""
    r = T.new_blinding()
    pts = T.blind(DOMAIN, [str(i) for i in ids], r)
    v = k * T.unblinding(r) % T.ORDER
    sh = share([v], m, t, T.ORDER)
    return pts, [[T.partial(a, sh[i][0]) for a in pts] for i in range(m)]


@pytest.mark.parametrize(("m", "t"), [(3, 1), (5, 2), (4, 1), (7, 3)])
def test_threshold_token_equals_direct_oprf(m, t):
    k = T.new_blinding()
    _, parts = _partials(IDS, m, t, k)
    for j, i in enumerate(IDS):
        tok = T.combine([parts[s][j] for s in range(m)], t, j)
        assert tok == T.direct_token(DOMAIN, str(i), k)


def test_two_owners_same_id_same_token_other_ids_differ():
    k = T.new_blinding()
    _, pa = _partials(["a", "b", "c"], 3, 1, k)
    _, pb = _partials(["c", "d", "a"], 3, 1, k)
    ta = [T.combine([pa[s][j] for s in range(3)], 1) for j in range(3)]
    tb = [T.combine([pb[s][j] for s in range(3)], 1) for j in range(3)]
    assert ta[0] == tb[2] and ta[2] == tb[0]
    assert len(set(ta) | set(tb)) == 4


def test_domain_separation_and_length_prefix():
    assert T.hash_to_point(b"a", "b") != T.hash_to_point(b"ab", "")
    assert T.hash_to_point(b"t1", "x") != T.hash_to_point(b"t2", "x")


@pytest.mark.parametrize(("m", "t"), [(3, 1), (5, 2)])
@pytest.mark.parametrize("seat", [0, 1, 2])
def test_attack_a_wrong_partial_is_detected(m, t, seat):
    """A malicious seat shifts its partial by a prime-order point: every parity check
    position catches it (at most t wrong partials out of m >= 2t+1)."""
    k = T.new_blinding()
    _, parts = _partials(IDS[:2], m, t, k)
    evil = list(parts[seat])
    evil[1] = _add(evil[1], T.hash_to_point(b"evil", "shift"))
    parts[seat] = evil
    T.combine([parts[s][0] for s in range(m)], t, 0)  # untouched element: fine
    with pytest.raises(T.PartialMismatch):
        T.combine([parts[s][1] for s in range(m)], t, 1)


def test_attack_a_replaced_partial_is_detected():
    k = T.new_blinding()
    _, parts = _partials(["a"], 3, 1, k)
    with pytest.raises(T.PartialMismatch):
        T.combine([parts[0][0], T.hash_to_point(b"x", "y"), parts[2][0]], 1)
    with pytest.raises(T.PartialMismatch):
        T.combine([parts[0][0], b"\x02" + bytes(32), parts[2][0]], 1)  # not a point


def test_attack_a_negated_partial_is_detected():
    k = T.new_blinding()
    _, parts = _partials(["a"], 3, 1, k)
    for seat in range(3):
        p = [parts[s][0] for s in range(3)]
        p[seat] = PublicKey(p[seat]).multiply((T.ORDER - 1).to_bytes(32, "big")).format(False)
        with pytest.raises(T.PartialMismatch):
            T.combine(p, 1)


def test_a_seats_view_holds_no_id_and_no_unblinded_hash():
    """What a seat receives: the owner's blinded points, its share of rho (a field element)
    and the other seats' partials. None equals (or contains) an id or H(id)."""
    ids = [f"customer-{i}" for i in range(50)]
    k = T.new_blinding()
    pts, parts = _partials(ids, 3, 1, k)
    view = b"".join(pts) + b"".join(b"".join(p) for p in parts)
    hashes = [T.hash_to_point(DOMAIN, i) for i in ids]
    for i, h in zip(ids, hashes, strict=True):
        assert i.encode() not in view
        assert h not in view
        assert hashlib.sha256(i.encode()).digest() not in view
    tokens = {T.combine([parts[s][j] for s in range(3)], 1) for j in range(len(ids))}
    assert not tokens & set(hashes)


def test_points_travel_as_two_field_halves():
    for i in ("a", "b", "c", "d"):
        p = T.hash_to_point(DOMAIN, i)
        hi, lo = T.split(p)
        assert hi < 2**129 and lo < 2**128 and T.join(hi, lo) == p
    with pytest.raises(T.BadPoint):
        T.mul(b"\x02" + bytes(32), 5)
    with pytest.raises(T.BadPoint):
        T.join(2**129, 0)


# ---- the batched hot paths (blind, partials, combine_all) against the per-element ones ----


def _blobs(parts):
    return [b"".join(p) for p in parts]


@pytest.mark.parametrize(("m", "t"), [(3, 1), (5, 2)])
def test_combine_all_equals_combine_per_element(m, t):
    k = T.new_blinding()
    _, parts = _partials(IDS, m, t, k)
    want = [T.combine([parts[s][j] for s in range(m)], t, j) for j in range(len(IDS))]
    assert T.combine_all(_blobs(parts), t, len(IDS)) == want
    assert want == [T.direct_token(DOMAIN, str(i), k) for i in IDS]


def test_blind_and_partials_equal_the_per_element_functions():
    r, s = T.new_blinding(), T.new_blinding()
    ids = [str(i) for i in IDS]
    pts = T.blind(DOMAIN, ids, r)
    assert pts == [T.mul(T.hash_to_point(DOMAIN, i), r) for i in ids]
    assert T.partials(pts, s) == b"".join(T.partial(p, s) for p in pts)
    with pytest.raises(T.BadPoint):
        T.partials([pts[0], b"\x02" + bytes(32)], s)


@pytest.mark.parametrize("seat", [0, 1, 2])
@pytest.mark.parametrize("how", ["shift", "negate", "garbage"])
def test_attack_combine_all_catches_a_wrong_partial(seat, how):
    """A seat's partial of element 2 (of 4) shifted by a point, negated, or not a point:
    combine_all names element 2 (the elements before it pass)."""
    k = T.new_blinding()
    _, parts = _partials(IDS[:4], 3, 1, k)
    evil = list(parts[seat])
    if how == "shift":
        evil[2] = _add(evil[2], T.hash_to_point(b"evil", "shift"))
    elif how == "negate":
        evil[2] = PublicKey(evil[2]).multiply((T.ORDER - 1).to_bytes(32, "big")).format(False)
    else:
        evil[2] = b"\x04" + bytes(64)
    parts[seat] = evil
    with pytest.raises(T.PartialMismatch) as e:
        T.combine_all(_blobs(parts), 1, 4)
    assert e.value.element == 2
    assert T.combine_all(_blobs([p[:2] for p in parts]), 1, 2)  # before it: fine
