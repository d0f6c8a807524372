"""The token math of the PSI family: a committee-held 2HashDH OPRF key in the exponent.

Group: the prime-order subgroup of edwards25519 (order ``ORDER`` = l), through libsodium
(pynacl).  ``hash_to_point`` maps an identifier into that subgroup with domain separation:
SHA-512 over a version tag, the task's domain and the identifier (length-prefixed, so two
ids never share an input), then two Elligator-2 maps added (``from_uniform`` clears the
cofactor), the random-oracle construction of RFC 9380 (hash_to_curve = map(u0) + map(u1)).

One-shot owner (no round trip): owner o draws a secret scalar r, publishes to the committee
only the blinded points ``a_j = r * H(id_j)`` and Shamir-shares ``rho = r^-1 mod l``.  The
committee holds a shared random key [k] and computes [k * rho] (one checked product); seat i
computes the partial ``P_ij = s_i * a_j`` with its share s_i of k * rho, the seats exchange
partials and every seat combines them by Lagrange interpolation in the exponent:
``T_j = sum_i lambda_i P_ij = k * rho * r * H(id_j) = k * H(id_j)``, the same token for the
same id whichever owner holds it; a token is a PRF value under k, so a seat learns equality
of ids across owners (the match pattern) and nothing else about them.

Shares sit at x = 1..m (MPyC's layout); a degree-t sharing evaluated at consecutive integers
has vanishing (t+1)-th finite differences, so the parity check of the m partials (``check``)
and the interpolation at 0 from x = 1..t+1 use only small integer coefficients: binomials.
Any partials off one degree-t polynomial "in the exponent" are detected when at most t of m
>= 2t+1 are wrong (the Reed-Solomon code has distance m - t > t), at the cost of a few point
additions per element; tokens are multiplied by a small factor (2 for m = 3, else the
cofactor 8) so that a small-order
component a cheating seat adds (invisible to an even coefficient) cannot change a token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from math import comb

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_from_uniform,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_noclamp,
)
from nacl.exceptions import RuntimeError as NaclRuntimeError

from dnode.scheduler.errors import SchedulerError

ORDER = 2**252 + 27742317777372353535851937790883648493  # l, the prime group order
IDENTITY = bytes([1]) + bytes(31)  # (0, 1)
TAG = b"dnode.psi.h2c.v1"
HALF = 1 << 128  # a 32-byte point travels as two 128-bit field elements (hi, lo)


class TokenError(SchedulerError):
    """Root of the PSI token errors."""


class BadPoint(TokenError):
    """A blinded point is not a point of the prime-order subgroup (owner input)."""

    def __init__(self, where: str) -> None:
        self.where = where
        super().__init__(f"{where}: not a point of the prime-order group")


class PartialMismatch(TokenError):
    """The seats' partials of one element are not on one degree-t polynomial in the exponent."""

    def __init__(self, element: int, window: int) -> None:
        self.element, self.window = element, window
        super().__init__(
            f"partials of element {element} fail parity check {window}: a seat sent a wrong "
            "partial (or the owner's points differ)"
        )


def scalar_bytes(s: int) -> bytes:
    return (s % ORDER).to_bytes(32, "little")


def hash_to_point(domain: bytes, ident: str | bytes) -> bytes:
    """H(id) in the prime-order subgroup (32-byte encoding), separated by ``domain``."""
    raw = ident.encode() if isinstance(ident, str) else bytes(ident)
    h = hashlib.sha512(
        TAG + len(domain).to_bytes(2, "big") + domain + len(raw).to_bytes(8, "big") + raw
    ).digest()
    return crypto_core_ed25519_add(
        crypto_core_ed25519_from_uniform(h[:32]), crypto_core_ed25519_from_uniform(h[32:])
    )


def new_blinding() -> int:
    """A secret scalar r in [1, l)."""
    return 1 + secrets.randbelow(ORDER - 1)


def mul(point: bytes, scalar: int) -> bytes:
    """scalar * point; raises BadPoint for a point outside the subgroup (libsodium checks)."""
    try:
        return crypto_scalarmult_ed25519_noclamp(scalar_bytes(scalar), point)
    except NaclRuntimeError:
        raise BadPoint("scalar multiplication") from None


def blind(domain: bytes, ids: Sequence[str | bytes], r: int) -> list[bytes]:
    """The owner's blinded points r * H(id) (what the seats see of its ids)."""
    return [mul(hash_to_point(domain, i), r) for i in ids]


def unblinding(r: int) -> int:
    """rho = r^-1 mod l, the value the owner secret-shares."""
    return pow(r, -1, ORDER)


def split(point: bytes) -> tuple[int, int]:
    v = int.from_bytes(point, "big")
    return v >> 128, v & (HALF - 1)


def join(hi: int, lo: int) -> bytes:
    if not (0 <= hi < HALF and 0 <= lo < HALF):
        raise BadPoint("point halves")
    return ((hi << 128) | lo).to_bytes(32, "big")


def small_mul(p: bytes, c: int) -> bytes:
    """c * p for a small integer c (double-and-add: additions only)."""
    neg, c = c < 0, abs(c)
    acc = IDENTITY
    add = p
    while c:
        if c & 1:
            acc = crypto_core_ed25519_add(acc, add) if acc != IDENTITY else add
        c >>= 1
        if c:
            add = crypto_core_ed25519_add(add, add)
    return crypto_core_ed25519_sub(IDENTITY, acc) if neg and acc != IDENTITY else acc


def _lincomb(points: Sequence[bytes], coeffs: Sequence[int]) -> bytes:
    acc = IDENTITY
    for p, c in zip(points, coeffs, strict=True):
        if c:
            acc = crypto_core_ed25519_add(acc, small_mul(p, c))
    return acc


def interpolation(t: int) -> list[int]:
    """Lagrange coefficients at 0 for x = 1..t+1: (-1)^(i+1) C(t+1, i), i = 1..t+1."""
    return [(-1) ** (i + 1) * comb(t + 1, i) for i in range(1, t + 2)]


def parity(m: int, t: int) -> list[list[int]]:
    """The (t+1)-th finite differences over x = 1..m: each vanishes on a degree-t sharing."""
    d = t + 1
    return [
        [0] * w + [(-1) ** (d - j) * comb(d, j) for j in range(d + 1)] + [0] * (m - d - 1 - w)
        for w in range(m - d)
    ]


def partial(point: bytes, share: int) -> bytes:
    """Seat i's partial s_i * a_j (its share of k * rho in the exponent)."""
    return mul(point, share)


def combine(partials: Sequence[bytes], t: int, element: int = 0) -> bytes:
    """The token 8 * k * H(id) from the m seats' partials (x = 1..m), after the parity check."""
    m = len(partials)
    if m == 3 and t == 1:
        return _combine3(partials, element)
    for w, row in enumerate(parity(m, t)):
        try:
            ok = _lincomb(partials, row) == IDENTITY
        except NaclRuntimeError:
            ok = False  # not even a curve point
        if not ok:
            raise PartialMismatch(element, w)
    try:
        return small_mul(_lincomb(partials[: t + 1], interpolation(t)), 8)
    except NaclRuntimeError:
        raise PartialMismatch(element, -1) from None


def _combine3(p: Sequence[bytes], element: int) -> bytes:
    """m = 3, t = 1 in five additions: parity P1 + P3 = 2 P2; token 2 (2 P1 - P2).

    Only an order-2 component at the middle seat escapes the parity check (coefficient -2);
    the factor 2 clears it, so the token is 2 * k * H(id) here and every combination of
    small-order components a seat may add is either caught or cleared."""
    try:
        p2 = crypto_core_ed25519_add(p[1], p[1])
        if crypto_core_ed25519_add(p[0], p[2]) != p2:
            raise PartialMismatch(element, 0)
        p1 = crypto_core_ed25519_add(p[0], p[0])
        return crypto_core_ed25519_sub(crypto_core_ed25519_add(p1, p1), p2)
    except NaclRuntimeError:
        raise PartialMismatch(element, 0) from None


def cofactor(m: int, t: int) -> int:
    """The small factor every token carries (see ``combine``)."""
    return 2 if (m, t) == (3, 1) else 8


def direct_token(domain: bytes, ident: str | bytes, k: int, m: int = 3, t: int = 1) -> bytes:
    """c * k * H(id), c = ``cofactor(m, t)``: what ``combine`` yields (tests, references)."""
    return small_mul(mul(hash_to_point(domain, ident), k), cofactor(m, t))
