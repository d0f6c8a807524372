"""Secure comparison checked against a malicious minority: every step runs through the Guard.

MPyC's comparison protocols (``<``, ``np_amax``, ...) are semi-honest: their random bits,
products and openings are not checked, so one deviating party flips comparison results and
moves an opened minimum, maximum or median undetected.  :class:`Comparator` computes
``[d < 0]`` for a whole secure array at once from :class:`dnode.node.mpc.malicious.Guard`
primitives only:

Checked random bits (the square-root trick of Damgaard, Fitzi, Kiltz, Nielsen, Toft,
"Unconditionally secure constant-rounds multi-party computation for equality, comparison,
bits and exponentiation", TCC 2006)
    a uniformly random sharing [a] (PRSS, no communication); [a*a] by an *authenticated*
    product (Chida et al.), checked by :meth:`Guard.verify` BEFORE a*a is opened with error
    detection; then b = (a / sqrt(a*a) + 1) / 2 is 0 or 1 exactly (p = 3 mod 4, the
    canonical root is public).  A deviation makes the session abort before any bit is used.

Statistically masked opening (Catrina and de Hoogh, "Improved primitives for secure
multiparty integer computation", SCN 2010)
    for |d| < 2**(l-1): y = d + 2**(l-1) lies in [0, 2**l); the parties open, with error
    detection, c = y + r_low + 2**l * r_high, where r_low = sum 2**i b_i (l checked bits) and
    r_high is PRSS-random below 2**kappa (kappa = field bits - l - 3 >= 29; the one PRSS term
    no minority knows is uniform below 2**kappa / C(m, t), which hides y up to statistical
    distance about 2**-(kappa - 1 - bits(C(m, t))), e.g. 2**-26 for m = 3).  Nothing that
    depends on an unchecked product is opened: the products d depends on were verified just
    before.

Bitwise borrow circuit (the carry chain of BitLT, Catrina and de Hoogh)
    with c public, the borrows of c mod 2**l - r_low are u_{i+1} = g_i + p_i u_i,
    g_i = (1 - c_i) b_i, p_i = [c_i = b_i] (both linear in b_i); every product is a
    :meth:`Guard.mul` (authenticated, checked at the next verify).  Then
    msb(y) = c_{l-1} xor b_{l-1} xor u_{l-1} and [d < 0] = 1 - msb(y): a bit whatever d is.

Range check
    y_low = (c mod 2**l) - r_low + 2**l u_l is always an integer in [0, 2**l), and equals y
    iff d lies in [-2**(l-1), 2**(l-1)).  The parties test sum_j gamma_j (y_j - y_low_j) = 0
    (gamma public, drawn after c is fixed; masked by a random factor) with the session's zero
    tests: a compared value out of range (an owner that shared 2**90) aborts the session
    instead of producing a wrong comparison.

Cost per compared value: 4 l products for the bits, 2 l for the borrow chain; one verify
(the Chida et al. check) and two openings per call, whatever the array's size.

No mpyc import here: the caller's Guard holds the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dnode.node.mpc.malicious import Auth, CheatingDetected, Guard, coefficients

__all__ = ["Comparator"]

_Pair = tuple[np.ndarray, np.ndarray]  # this party's shares of (x, r*x)


@dataclass
class _Masked:
    bits: np.ndarray  # (l, n) shares of checked random bits
    brx: np.ndarray  # (l, n) shares of r * bits (this epoch)
    rsh: int  # share of this epoch's r
    c: np.ndarray  # the opened masked values (public)
    cb: list[np.ndarray]  # their bits, per position
    r_low: np.ndarray  # shares of sum 2**i bits_i


def _inv_roots(vals: list[int], p: int) -> np.ndarray | None:
    """Per v: 1/sqrt(v) mod p (p = 3 mod 4: v**((p - 3) / 4)), or None if some v is 0 or not
    a square.  gmpy2 (a declared dependency) when present: ~10x faster than ``pow`` here.
    p = 1 mod 4 (e.g. secp256k1's group order, the PSI field): :func:`_inv_roots_ts`."""
    if p % 4 != 3:
        return _inv_roots_ts(vals, p)
    e = (p - 3) // 4
    try:
        import gmpy2

        pm = gmpy2.mpz(p)
        mroots = gmpy2.powmod_base_list(vals, e, pm)
        ok = all(v and r * r * v % pm == 1 for v, r in zip(vals, mroots, strict=True))
        roots = [int(r) for r in mroots]
    except ImportError:  # pragma: no cover - gmpy2 is pinned in pyproject.toml
        roots = [pow(v, e, p) for v in vals]
        ok = all(v and r * r % p * v % p == 1 for v, r in zip(vals, roots, strict=True))
    return np.array(roots, dtype=object) if ok else None


def _inv_roots_ts(vals: list[int], p: int) -> np.ndarray | None:
    """1/r per v for r the canonical square root of v (the one in [1, (p - 1) / 2]: then
    b = (a / r + 1) / 2 is [a <= (p - 1) / 2], a uniform bit for a uniform a), by
    Tonelli-Shanks for any odd prime p; None if some v is 0 or not a square."""
    import gmpy2

    pm = gmpy2.mpz(p)
    q, s = p - 1, 0
    while q % 2 == 0:
        q //= 2
        s += 1
    z = 2
    while pow(z, (p - 1) // 2, p) != p - 1:
        z += 1
    c0 = gmpy2.powmod(z, q, pm)
    xs = gmpy2.powmod_base_list(vals, (q + 1) // 2, pm)
    ts = gmpy2.powmod_base_list(vals, q, pm)
    out = []
    for v, x, t in zip(vals, xs, ts, strict=True):
        if not v:
            return None
        m, c = s, c0
        while t != 1:
            i, t2 = 0, t
            while t2 != 1:
                t2 = t2 * t2 % pm
                i += 1
                if i == m:
                    return None  # not a square
            b = gmpy2.powmod(c, 1 << (m - i - 1), pm)
            x, c, m = x * b % pm, b * b % pm, i
            t = t * c % pm
        r = int(x)
        r = min(r, p - r)
        out.append(int(gmpy2.invert(r, pm)))
    return np.array(out, dtype=object)


class Comparator:
    """Checked ``[d < 0]`` over secure arrays of ``guard``'s secure type."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.mpc = guard.mpc
        self.sectype = guard.sectype
        self.field = guard.field
        self.p = guard.p
        self.calls = 0

    # ------------------------------------------------------------------ share level

    async def _sh(self, arr: Any) -> np.ndarray:
        """This party's shares of a secure array, flat (object ndarray of ints)."""
        g = await self.mpc.gather(arr)
        if hasattr(g, "shape"):
            return np.asarray(g.value, dtype=object).reshape(-1)
        return np.array([int(g.value)], dtype=object)

    def _mk(self, shares: np.ndarray) -> Any:
        """A secure array from this party's shares (local: shares are linear)."""
        vals = np.asarray(shares, dtype=object) % self.p
        return self.sectype.array(self.field.array(vals))

    def _auth(self, xs: np.ndarray, rxs: np.ndarray) -> Auth:
        return Auth(self._mk(xs), self._mk(rxs), self.guard.epoch)

    # ------------------------------------------------------------------ protocol

    async def _bits(self, count: int) -> np.ndarray:
        """Shares of ``count`` random bits, checked: verify() runs inside (it also checks
        every product the caller left pending)."""
        g, mpc = self.guard, self.mpc
        a = mpc._np_randoms(self.sectype, count)
        sq = g.mul(g.authenticate(a), a)
        await g.verify()
        a2 = await g.open([sq.x], "cmp-squares")
        p = self.p
        inv = _inv_roots(a2, p)
        if inv is None:
            raise CheatingDetected("comparison", "a random square is 0 or not a square")
        half = (p + 1) // 2
        return ((await self._sh(a)) * inv + 1) * half % p

    def _kappa(self, l: int) -> int:  # noqa: E741 - the paper's l
        kappa = self.p.bit_length() - l - 3
        if l < 1 or kappa < 20:
            raise ValueError(f"a {l}-bit comparison does not fit a {self.p.bit_length()}-bit field")
        return kappa

    async def _pair(self, a: Auth) -> tuple[np.ndarray, np.ndarray]:
        return await self._sh(a.x), await self._sh(a.rx)

    async def _masked(self, y: np.ndarray, l: int, tag: str) -> _Masked:  # noqa: E741
        """Checked bits b (l, n), the opened c = y + sum 2**i b_i + 2**l r_high, and the bits
        authenticated under the epoch that starts here (``_bits`` verified the previous)."""
        g, p, n = self.guard, self.p, len(y)
        kappa = self._kappa(l)
        bits = (await self._bits(n * l)).reshape(l, n)  # bits[i, j]: bit i of value j's mask
        high = await self._sh(self.mpc._np_randoms(self.sectype, n, 1 << kappa))
        pow2 = np.array([1 << i for i in range(l)], dtype=object).reshape(l, 1)
        r_low = (bits * pow2).sum(axis=0)
        c = np.array(
            await g.open_shares(list((y + r_low + (high << l)) % p), f"{tag}-masked"),
            dtype=object,
        )
        ba = g.authenticate(self._mk(bits.reshape(-1)))  # the bits under this epoch's r
        brx = (await self._sh(ba.rx)).reshape(l, n)
        (rsh,) = await self._sh(g.r)
        return _Masked(bits, brx, rsh, c, [(c >> i) & 1 for i in range(l)], r_low)

    async def _borrows(self, gs: list[_Pair], ps: list[_Pair]) -> list[_Pair]:
        """u_{i+1} = g_i + p_i u_i (u_0 = 0): the borrow chain, one Guard.mul per position."""
        u = gs[0]
        out = [u]
        for gi, pi in zip(gs[1:], ps[1:], strict=True):
            zx, zrx = await self._pair(self.guard.mul(self._auth(*pi), self._mk(u[0])))
            u = ((gi[0] + zx) % self.p, (gi[1] + zrx) % self.p)
            out.append(u)
        return out

    async def _range_check(
        self,
        y: np.ndarray,
        m: _Masked,
        ul: np.ndarray,
        l: int,  # noqa: E741
        tag: str,
        why: str,
        owner: int | None = None,
    ) -> None:
        """Zero test: y == (c mod 2**l) - r_low + 2**l u_l, i.e. y in [0, 2**l)."""
        g, p = self.guard, self.p
        diff = (y - (m.c % (1 << l)) + m.r_low - (ul << l)) % p
        gamma = coefficients(await g.coin(f"{tag}-range"), "range", len(y))
        combo = self.sectype(self.field(int(np.dot(gamma, diff)) % p))
        g.must_be_zero(self.mpc._random(self.sectype) * combo, "range", owner, why)

    async def less_than_zero(self, d: Any, l: int) -> Auth:  # noqa: E741 - the paper's l
        """Auth of the bits [d < 0] (flattened ``d``), for -2**(l-1) <= d < 2**(l-1).

        Products pending: verify before opening anything computed from the result."""
        if l < 2:
            raise ValueError("a signed comparison needs l >= 2")
        p = self.p
        self.calls += 1
        tag = f"cmp{self.calls}"
        y = (await self._sh(d)) + (1 << (l - 1))
        m = await self._masked(y, l, tag)
        cb, bx, brx, rsh = m.cb, m.bits, m.brx, m.rsh

        def lin(i: int, coef: Any, const: Any) -> _Pair:
            """coef * b_i + const (public vectors) as shares of (x, r*x)."""
            return (bx[i] * coef + const) % p, (brx[i] * coef + const * rsh) % p

        gs = [lin(i, 1 - cb[i], 0) for i in range(l)]  # c_i < b_i
        ps = [lin(i, 2 * cb[i] - 1, 1 - cb[i]) for i in range(l)]  # 1 - (c_i xor b_i)
        borrows = await self._borrows(gs, ps)
        top = l - 1
        e = lin(top, 1 - 2 * cb[top], cb[top])  # c_{l-1} xor b_{l-1}
        ub = borrows[top - 1]  # borrow into position l-1
        zx, zrx = await self._pair(self.guard.mul(self._auth(*e), self._mk(ub[0])))
        # msb = e + u - 2 e u ;  [d < 0] = 1 - msb
        lt_x = (1 - (e[0] + ub[0] - 2 * zx)) % p
        lt_rx = (rsh - (e[1] + ub[1] - 2 * zrx)) % p
        why = (
            f"a compared value lies outside [-2**{l - 1}, 2**{l - 1}) (a value out of its "
            "declared range)"
        )
        await self._range_check(y, m, borrows[l - 1][0], l, tag, why)
        return self._auth(lt_x, lt_rx)

    async def decompose(
        self,
        v: Any,
        l: int,  # noqa: E741 - the paper's l
        owner: int | None = None,
        why: str | None = None,
    ) -> np.ndarray:
        """Shares (l, n) of the bits of each v (flattened) in [0, 2**l); a v outside aborts
        the session at the next verify (BitDec: Damgaard et al. TCC 2006, with the masked
        opening above), naming ``owner`` (if given) with ``why``.  The bits depend on
        products of this epoch: they are checked by the next verify, before anything
        computed from them is opened."""
        p = self.p
        self.calls += 1
        tag = f"dec{self.calls}"
        y = await self._sh(v)
        m = await self._masked(y, l, tag)
        cb, bx, brx, rsh = m.cb, m.bits, m.brx, m.rsh

        def lin(i: int, coef: Any, const: Any) -> _Pair:
            return (bx[i] * coef + const) % p, (brx[i] * coef + const * rsh) % p

        gs = [lin(i, 1 - cb[i], 0) for i in range(l)]
        ps = [lin(i, 2 * cb[i] - 1, 1 - cb[i]) for i in range(l)]
        borrows = await self._borrows(gs, ps)
        out = np.empty((l, len(y)), dtype=object)
        out[0] = (bx[0] * (1 - 2 * cb[0]) + cb[0]) % p  # y_0 = c_0 xor b_0
        for i in range(1, l):  # y_i = c_i xor (b_i xor u_i)
            u = borrows[i - 1]
            zx, _ = await self._pair(self.guard.mul(self._auth(bx[i], brx[i]), self._mk(u[0])))
            d = (bx[i] + u[0] - 2 * zx) % p
            out[i] = (d * (1 - 2 * cb[i]) + cb[i]) % p
        why = why or f"a value lies outside [lo, lo + 2**{l}) (out of its declared range)"
        await self._range_check(y, m, borrows[l - 1][0], l, tag, why, owner)
        return out

    async def below(self, vbits: np.ndarray, t: np.ndarray) -> Auth:
        """Auth of [v < t] for v given by its bit shares (l, n) (:meth:`decompose`) and public
        integers t (n,) in [0, 2**l]: the borrow chain of v - t, l - 1 products, no opening."""
        g, p = self.guard, self.p
        l, n = vbits.shape  # noqa: E741
        t = np.asarray(t, dtype=object).reshape(-1)
        a = g.authenticate(self._mk(vbits.reshape(-1)))  # under this epoch's r
        vrx = (await self._sh(a.rx)).reshape(l, n)
        (rsh,) = await self._sh(g.r)
        tb = [(t >> i) & 1 for i in range(l + 1)]

        def lin(i: int, coef: Any, const: Any) -> _Pair:
            return (vbits[i] * coef + const) % p, (vrx[i] * coef + const * rsh) % p

        gs = [lin(i, -tb[i], tb[i]) for i in range(l)]  # v_i < t_i: (1 - v_i) t_i
        ps = [lin(i, 2 * tb[i] - 1, 1 - tb[i]) for i in range(l)]  # 1 - (v_i xor t_i)
        ux, urx = (await self._borrows(gs, ps))[l - 1]
        top = tb[l]  # t = 2**l: every v is below
        return self._auth((ux * (1 - top) + top) % p, (urx * (1 - top) + top * rsh) % p)
