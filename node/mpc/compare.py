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
    r_high is PRSS-random below 2**kappa (kappa = field bits - l - 3 >= 28: hides y up to
    statistical distance about 2**-(kappa-2)).  Nothing that depends on an unchecked product
    is opened: the products d depends on were verified just before.

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

from typing import Any

import numpy as np

from dnode.node.mpc.malicious import Auth, CheatingDetected, Guard, coefficients

__all__ = ["Comparator"]


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
        inv = np.empty(count, dtype=object)
        e = (p - 3) // 4
        for j, v in enumerate(a2):
            s = pow(v, e, p)  # 1/sqrt(v) when v is a nonzero square (p = 3 mod 4)
            if v == 0 or s * s % p * v % p != 1:
                raise CheatingDetected("comparison", "a random square is 0 or not a square")
            inv[j] = s
        half = (p + 1) // 2
        return ((await self._sh(a)) * inv + 1) * half % p

    async def less_than_zero(self, d: Any, l: int) -> Auth:  # noqa: E741 - the paper's l
        """Auth of the bits [d < 0] (flattened ``d``), for -2**(l-1) <= d < 2**(l-1).

        Products pending: verify before opening anything computed from the result."""
        g, p = self.guard, self.p
        kappa = p.bit_length() - l - 3
        if l < 2 or kappa < 20:
            raise ValueError(f"a {l}-bit comparison does not fit a {p.bit_length()}-bit field")
        self.calls += 1
        tag = f"cmp{self.calls}"
        ds = await self._sh(d)
        n = len(ds)
        bits = (await self._bits(n * l)).reshape(l, n)  # bits[i, j]: bit i of value j's mask
        high = await self._sh(self.mpc._np_randoms(self.sectype, n, 1 << kappa))
        pow2 = np.array([1 << i for i in range(l)], dtype=object).reshape(l, 1)
        r_low = (bits * pow2).sum(axis=0)
        y = ds + (1 << (l - 1))
        c = np.array(
            await g.open_shares(list((y + r_low + (high << l)) % p), f"{tag}-masked"),
            dtype=object,
        )
        cb = [(c >> i) & 1 for i in range(l)]  # public bits of c, per position
        ba = g.authenticate(self._mk(bits.reshape(-1)))  # the bits under this epoch's r
        bx, brx = bits, (await self._sh(ba.rx)).reshape(l, n)
        (rsh,) = await self._sh(g.r)

        def lin(i: int, coef: Any, const: Any) -> tuple[np.ndarray, np.ndarray]:
            """coef * b_i + const (public vectors) as shares of (x, r*x)."""
            return (bx[i] * coef + const) % p, (brx[i] * coef + const * rsh) % p

        u = lin(0, 1 - cb[0], 0)  # u_1 = g_0 (no borrow in)
        borrows = [u]
        for i in range(1, l):
            gi = lin(i, 1 - cb[i], 0)
            pi = lin(i, 2 * cb[i] - 1, 1 - cb[i])  # 1 - (c_i xor b_i)
            z = g.mul(self._auth(*pi), self._mk(u[0]))
            zx, zrx = await self._sh(z.x), await self._sh(z.rx)
            u = ((gi[0] + zx) % p, (gi[1] + zrx) % p)
            borrows.append(u)
        top = l - 1
        e = lin(top, 1 - 2 * cb[top], cb[top])  # c_{l-1} xor b_{l-1}
        ub = borrows[top - 1]  # borrow into position l-1
        z = g.mul(self._auth(*e), self._mk(ub[0]))
        zx, zrx = await self._sh(z.x), await self._sh(z.rx)
        # msb = e + u - 2 e u ;  [d < 0] = 1 - msb
        lt_x = (1 - (e[0] + ub[0] - 2 * zx)) % p
        lt_rx = (rsh - (e[1] + ub[1] - 2 * zrx)) % p
        # range: y == (c mod 2**l) - r_low + 2**l u_l
        ul = borrows[l - 1][0]
        diff = (y - (c % (1 << l)) + r_low - (ul << l)) % p
        gamma = coefficients(await g.coin(f"{tag}-range"), "range", n)
        combo = self.sectype(self.field(int(np.dot(gamma, diff)) % p))
        g.must_be_zero(
            self.mpc._random(self.sectype) * combo,
            "range",
            None,
            f"a compared value lies outside [-2**{l - 1}, 2**{l - 1}) (a value out of its "
            "declared range)",
        )
        return self._auth(lt_x, lt_rx)
