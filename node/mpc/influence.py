"""Bounded influence of one data owner: per-owner sums checked inside the MPC.

Nodes only ever see shares, so they cannot range-check a value: a consistent sharing of
2**90 passes every share check and moves a sum anywhere.  Checking every value (a bit
decomposition per value) costs ~64 products per value -- too much at 10**6 values.  What
matters for an aggregate is an owner's *influence*, so dnode checks, per owner k with
n_k values and the task's declared bound B (|v| <= B, lo = -B, hi = B):

    q1 = S1 + n_k*B >= 0,  q2 = n_k*B - S1 >= 0           (S1 = sum of the owner's values)
    and for programs with squares (mpc.variance), also
    q3 = S2 >= 0,  q4 = n_k*B**2 - S2 >= 0,  q5 = n_k*S2 - S1**2 >= 0   (S2 = sum of squares)

Each q is proven non-negative with a bit decomposition the OWNER supplies (it knows its
own sums), shared like its values and appended to its share vector (:func:`with_witness`):
inside the MPC the parties check that every witness entry is a bit (sum_j g_j b_j (1-b_j)
= 0 for public random g, one inner product) and that q = sum_j 2**j b_j (linear).  The
idea of client-supplied encodings checked by the servers is Prio's (Corrigan-Gibbs and
Boneh, NSDI 2017); here it is applied to one sum per owner rather than to every value.
All products are authenticated by :class:`node.mpc.malicious.Guard`, so a malicious
party can neither fake a pass nor frame an honest owner undetected (a failed check names
the owner; see docs/protocol.md for what an abort reveals).

Soundness: with 2**len < p/2 no check can wrap modulo p, so q1, q2 put S1 in
[-n_k B, n_k B] -- every such integer is the sum of n_k legal values, i.e. for sum and
mean the result is one some legal input produces.  q3, q4 put S2 in [0, n_k B**2]; then
q5 (Cauchy-Schwarz) holds over the integers, so (S1, S2) lies in the region legal real
inputs in [-B, B] span (S1**2/n_k <= S2 <= n_k B**2): an owner can shape its second
moment only as legal-valued data could, within one value's granularity.

Tables (the programs of :mod:`dnode.scheduler.programs`): an owner's shares are ``rows x width``
integers (row-major) followed by its witness, which proves the quantities above PER COLUMN c
with that column's bound B_c (:class:`TableWitness`, declared by the program's spec), and, for
programs that reveal cross products (a Gram matrix: covariance, correlation), per pair of
columns a < b also

    q+ = S_aa + S_bb + 2 S_ab >= 0,  q- = S_aa + S_bb - 2 S_ab >= 0     (sums of (a +- b)**2)

so |S_ab| <= (S_aa + S_bb) / 2 <= n_k (B_a**2 + B_b**2) / 2: an owner moves a cross product
only as far as legal-valued rows could.

This module does not import mpyc; :func:`add_checks` works on the secure objects of a
running party through its Guard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dnode.node.mpc.sharing import value_bound

__all__ = [
    "Check",
    "TableWitness",
    "add_checks",
    "add_table_checks",
    "declared_bound",
    "fits",
    "layout",
    "split",
    "table_layout",
    "table_rows",
    "table_witness",
    "task_witness",
    "witness",
    "with_witness",
]


def declared_bound(bit_length: int, max_values: int, squares: bool) -> int:
    """The bound B every encoded value satisfies (what ``sharing.encode`` enforces)."""
    b = value_bound(bit_length, max_values)
    return math.isqrt(b) if squares else b


def layout(count: int, bound: int, squares: bool) -> list[int]:
    """Bit lengths of the witnesses q1, q2 (and q3, q4, q5 with squares) for ``count`` values."""
    n, b = count, bound
    ls = [max(1, (2 * n * b).bit_length())] * 2
    if squares:
        ls += [max(1, (n * b * b).bit_length())] * 2
        ls.append(max(1, (n * n * b * b).bit_length()))
    return ls


def _quantities(values: list[int], bound: int, squares: bool) -> list[int]:
    n, b = len(values), bound
    s1 = sum(values)
    qs = [s1 + n * b, n * b - s1]
    if squares:
        s2 = sum(v * v for v in values)
        qs += [s2, n * b * b - s2, n * s2 - s1 * s1]
    return qs


def witness(values: list[int], bound: int, squares: bool) -> list[int]:
    """The owner's bits (little-endian per quantity); ValueError if a value is out of range."""
    if any(abs(v) > bound for v in values):
        raise ValueError(f"a value exceeds the declared bound {bound}")
    out: list[int] = []
    for q, ell in zip(
        _quantities(values, bound, squares), layout(len(values), bound, squares), strict=True
    ):
        if q < 0 or q >= 1 << ell:
            raise ValueError("influence witness out of range")
        out += [(q >> j) & 1 for j in range(ell)]
    return out


def with_witness(values: list[int], bound: int, squares: bool) -> list[int]:
    """What an owner shares: its encoded values followed by their influence witness."""
    return list(values) + witness(values, bound, squares)


def split(total: int, bound: int, squares: bool) -> int:
    """The number of values in a shared vector of length ``total`` (values + witness)."""
    # w(n) grows with n, so the answer lies in [total - w(total), total]
    for n in range(max(0, total - sum(layout(total, bound, squares))), total + 1):
        if n + sum(layout(n, bound, squares)) == total:
            return n
    raise ValueError(f"a vector of {total} shares is not values plus an influence witness")


def fits(count: int, bound: int, squares: bool, modulus: int) -> bool:
    """Whether no check can wrap around modulo ``modulus`` (needed for soundness)."""
    return max(layout(count, bound, squares)) + 2 < modulus.bit_length() - 1


async def add_checks(
    guard: Any,
    owner: int,
    count: int,
    bound: int,
    s1: Any,
    s2: Any | None,
    bits: Any,
    seed: bytes,
) -> None:
    """Record the influence checks of one owner on ``guard`` (tested by ``guard.verify``).

    ``s1``: secure sum of the owner's values; ``s2``: its authenticated sum of squares
    (:class:`node.mpc.malicious.Auth`) or None; ``bits``: secure array of its witness;
    ``seed``: a coin drawn after the inputs were fixed (``await guard.coin(...)``)."""
    from dnode.node.mpc.malicious import coefficients

    ells = layout(count, bound, s2 is not None)
    n, b = count, bound
    qs = [s1 + n * b, n * b - s1]
    if s2 is not None:
        s1a = guard.authenticate(s1)
        s1sq = guard.mul(s1a, s1)
        qs += [s2.x, n * b * b - s2.x, s2.x * n - s1sq.x]
    total = sum(ells)
    gamma = coefficients(seed, f"bits{owner}", total)
    ab = guard.authenticate(bits)
    z = guard.inner(ab.scale(gamma), 1 - bits)  # sum_j g_j b_j (1 - b_j): 0 iff all bits
    why = f"its inputs exceed the declared bound |v| <= {bound} (or its witness is malformed)"
    guard.must_be_zero(z.x, "influence", owner, why)
    off = 0
    mpc = guard.mpc
    for q, ell in zip(qs, ells, strict=True):
        pow2 = np.array([1 << j for j in range(ell)], dtype=object)
        rec = mpc.np_sum(bits[off : off + ell] * pow2)
        guard.must_be_zero(q - rec, "influence", owner, why)
        off += ell


# ---------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableWitness:
    """What an owner's witness proves, per the program's spec: ``bounds[c]`` is the declared
    |value| bound of encoded column c (``width`` of them); ``level`` 0: column sums, 1: also
    sums of squares, 2: also the cross products of every pair of columns."""

    bounds: tuple[int, ...]
    level: int = 0
    # linear checks instead of the per-column quantities (``Check``): for an owner whose
    # rows are statistics it computed itself (the federated ML steps), e.g. "its sum lies
    # within its count times the column's range"; they must pin every column (see Check)
    checks: tuple[Check, ...] = ()

    @property
    def width(self) -> int:
        return len(self.bounds)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bounds": list(self.bounds), "level": self.level}
        if self.checks:
            out["checks"] = [c.to_json() for c in self.checks]
        return out

    @classmethod
    def from_json(cls, d: Any) -> TableWitness:
        if not isinstance(d, dict) or not isinstance(d.get("bounds"), list):
            raise ValueError("witness must be {'bounds': [...], 'level': 0..2}")
        bounds, level = tuple(d["bounds"]), d.get("level", 0)
        if not bounds or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1
                                 for b in bounds):  # fmt: skip
            raise ValueError("witness bounds must be positive ints")
        if level not in (0, 1, 2):
            raise ValueError("witness level must be 0, 1 or 2")
        checks = tuple(Check.from_json(c, len(bounds)) for c in d.get("checks") or ())
        if checks and level:
            raise ValueError("witness checks replace the column quantities: level must be 0")
        return cls(bounds, level, checks)


@dataclass(frozen=True)
class Check:
    """One linear check on an owner's column sums S (for a one-row owner: its row):
    ``q = const + sum(coef * S[column]) >= 0``, proven by the owner's bits of q in
    [0, 2**bits) with ``bits = upper.bit_length()`` (``upper``: the largest q an honest owner
    gives).  A spec's checks must pin every column to a bounded integer (each column appears
    with coefficient +-1 or +-2 in a check whose other terms are pinned), so no check can
    wrap modulo p (the field holds 2**(bits + 2) times the columns' bounds)."""

    terms: tuple[tuple[int, int], ...]  # (column, coefficient)
    const: int
    upper: int

    @property
    def bits(self) -> int:
        return max(1, self.upper.bit_length())

    def value(self, sums: list[Any]) -> Any:
        q: Any = self.const
        for c, a in self.terms:
            q = q + sums[c] * a
        return q

    def to_json(self) -> list[Any]:
        return [[[c, a] for c, a in self.terms], self.const, self.upper]

    @classmethod
    def from_json(cls, d: Any, width: int) -> Check:
        try:
            terms = tuple((int(c), int(a)) for c, a in d[0])
            const, upper = int(d[1]), int(d[2])
        except (TypeError, ValueError, IndexError) as e:
            raise ValueError(f"malformed witness check: {e}") from None
        if not terms or any(not 0 <= c < width for c, _ in terms) or upper < 0:
            raise ValueError("witness check: a column outside the row or a negative upper")
        return cls(terms, const, upper)


def task_witness(params: Any) -> TableWitness | None:
    """The witness layout of a task (``scheduler.programs.TaskParams``) from its program's spec;
    None for programs without table inputs (HE)."""
    got = params.spec.influence(params)
    if got is None:
        return None
    checks = tuple(
        Check(tuple((int(c), int(a)) for c, a in terms), int(const), int(upper))
        for terms, const, upper in params.spec.influence_checks(params)
    )
    return TableWitness(tuple(got[0]), int(got[1]), checks)


def _pairs(w: TableWitness) -> list[tuple[int, int]]:
    n = w.width
    return [(a, b) for a in range(n) for b in range(a + 1, n)] if w.level >= 2 else []


def table_layout(rows: int, w: TableWitness) -> list[int]:
    """Bit lengths of every witnessed quantity of an owner with ``rows`` rows."""
    if w.checks:
        return [c.bits for c in w.checks]
    ls: list[int] = []
    for b in w.bounds:
        ls += layout(rows, b, w.level >= 1)
    for a, b in _pairs(w):
        ls += [max(1, (2 * rows * (w.bounds[a] ** 2 + w.bounds[b] ** 2)).bit_length())] * 2
    return ls


def _table_quantities(values: list[int], w: TableWitness) -> list[int]:
    n = len(values) // w.width
    cols = [values[c :: w.width] for c in range(w.width)]
    if w.checks:
        sums = [sum(col) for col in cols]
        return [int(c.value(sums)) for c in w.checks]
    qs: list[int] = []
    for col, b in zip(cols, w.bounds, strict=True):
        qs += _quantities(col, b, w.level >= 1)
    for a, b in _pairs(w):
        saa = sum(v * v for v in cols[a])
        sbb = sum(v * v for v in cols[b])
        sab = sum(x * y for x, y in zip(cols[a], cols[b], strict=True))
        qs += [saa + sbb + 2 * sab, saa + sbb - 2 * sab]
    assert n == len(cols[0])
    return qs


def table_witness(values: list[int], w: TableWitness) -> list[int]:
    """An owner's witness bits for its row-major ``values``; ValueError if out of range."""
    if len(values) % w.width:
        raise ValueError(f"{len(values)} values are not whole rows of {w.width}")
    for c, b in enumerate(w.bounds):
        if any(abs(v) > b for v in values[c :: w.width]):
            raise ValueError(f"a value of column {c} exceeds the declared bound {b}")
    out: list[int] = []
    rows = len(values) // w.width
    for q, ell in zip(_table_quantities(values, w), table_layout(rows, w), strict=True):
        if q < 0 or q >= 1 << ell:
            raise ValueError("influence witness out of range")
        out += [(q >> j) & 1 for j in range(ell)]
    return out


def table_rows(total: int, w: TableWitness) -> int:
    """The number of rows in an owner's vector of ``total`` shares (rows x width + witness)."""
    hi = total // w.width
    lo = max(0, hi - sum(table_layout(hi, w)))
    for n in range(lo, hi + 1):
        if n * w.width + sum(table_layout(n, w)) == total:
            return n
    raise ValueError(f"{total} shares are not rows of {w.width} plus an influence witness")


def table_fits(rows: int, w: TableWitness, modulus: int) -> bool:
    """Whether no check of an owner with ``rows`` rows can wrap around modulo ``modulus``."""
    return max(table_layout(rows, w)) + 2 < modulus.bit_length() - 1


async def add_table_checks(
    guard: Any,
    owner: int,
    rows: int,
    w: TableWitness,
    s1: list[Any],
    s2: list[Any] | None,
    cross: dict[tuple[int, int], Any] | None,
    bits: Any,
    seed: bytes,
) -> None:
    """Record one owner's influence checks on ``guard`` (tested by ``guard.verify``).

    ``s1[c]``: secure sum of column c; ``s2[c]``: its authenticated sum of squares
    (level >= 1); ``cross[(a, b)]``: the secure cross product S_ab (level 2); ``bits``: the
    owner's witness (secure array); ``seed``: a coin drawn after the inputs were fixed."""
    from dnode.node.mpc.malicious import coefficients

    if w.checks:
        await _add_linear_checks(guard, owner, w, s1, bits, seed)
        return
    ells = table_layout(rows, w)
    n = rows
    qs: list[Any] = []
    for c, b in enumerate(w.bounds):
        qs += [s1[c] + n * b, n * b - s1[c]]
        if w.level >= 1:
            assert s2 is not None
            s1a = guard.authenticate(s1[c])
            s1sq = guard.mul(s1a, s1[c])
            qs += [s2[c].x, n * b * b - s2[c].x, s2[c].x * n - s1sq.x]
    for a, b in _pairs(w):
        assert s2 is not None and cross is not None
        sq = s2[a].x + s2[b].x
        qs += [sq + 2 * cross[(a, b)], sq - 2 * cross[(a, b)]]
    gamma = coefficients(seed, f"bits{owner}", sum(ells))
    ab = guard.authenticate(bits)
    z = guard.inner(ab.scale(gamma), 1 - bits)  # sum_j g_j b_j (1 - b_j): 0 iff all bits
    bound = w.bounds[0] if len(set(w.bounds)) == 1 else list(w.bounds)
    why = f"its inputs exceed the declared bound |v| <= {bound} (or its witness is malformed)"
    guard.must_be_zero(z.x, "influence", owner, why)
    off = 0
    for q, ell in zip(qs, ells, strict=True):
        pow2 = np.array([1 << j for j in range(ell)], dtype=object)
        rec = guard.mpc.np_sum(bits[off : off + ell] * pow2)
        guard.must_be_zero(q - rec, "influence", owner, why)
        off += ell


async def _add_linear_checks(
    guard: Any, owner: int, w: TableWitness, s1: Any, bits: Any, seed: bytes
) -> None:
    """The ``Check`` s of one owner, vectorised (thousands of them for a federated step): the
    witness entries are bits (one inner product), and every check's quantity equals its bits'
    value -- all of them tested at once by one random linear combination (public coefficients
    drawn after the inputs were fixed: a nonzero difference survives with probability
    1 - 1/p)."""
    from dnode.node.mpc.malicious import coefficients

    mpc = guard.mpc
    ells = [c.bits for c in w.checks]
    total = sum(ells)
    gamma = coefficients(seed, f"bits{owner}", total)
    ab = guard.authenticate(bits)
    z = guard.inner(ab.scale(gamma), 1 - bits)  # sum_j g_j b_j (1 - b_j): 0 iff all bits
    why = "its statistics fail the program's range checks (they are not those of legal rows)"
    guard.must_be_zero(z.x, "influence", owner, why)
    m = len(w.checks)
    t = max(len(c.terms) for c in w.checks)
    idx = np.zeros((m, t), dtype=np.int64)
    coef = np.zeros((m, t), dtype=object)
    const = np.array([c.const for c in w.checks], dtype=object)
    for i, c in enumerate(w.checks):
        for j, (col, a) in enumerate(c.terms):
            idx[i, j], coef[i, j] = col, a
    sv = s1 if hasattr(s1, "shape") else mpc.np_stack(list(s1))
    q = sv[idx[:, 0]] * coef[:, 0] + const
    for j in range(1, t):
        q = q + sv[idx[:, j]] * coef[:, j]
    offs = np.cumsum([0, *ells[:-1]])
    lam = np.array(coefficients(seed, f"checks{owner}", m), dtype=object)
    acc: Any = 0
    for ell in sorted(set(ells)):
        rows = np.array([i for i, e in enumerate(ells) if e == ell], dtype=np.int64)
        at = (offs[rows][:, None] + np.arange(ell)[None, :]).reshape(-1)
        pow2 = np.array([1 << j for j in range(ell)], dtype=object)
        rec = bits[at].reshape(len(rows), ell) @ pow2  # (rows,): each check's bits' value
        acc = acc + (q[rows] - rec) @ lam[rows]
    guard.must_be_zero(acc, "influence", owner, why)
