"""The token math of the PSI family: a committee-held 2HashDH OPRF key in the exponent.

Group: secp256k1 (prime order ``ORDER`` = n, no cofactor: every valid point is in the group),
through libsecp256k1 (coincurve): a variable-base scalar multiplication costs about a third of
libsodium's edwards25519 one here, which is what every seat pays per element.

``hash_to_point`` maps an identifier into the group with domain separation: SHA-256 over a
version tag, the task's domain, the identifier (all length-prefixed, so two inputs never
collide by concatenation) and a counter, read as an x coordinate, with one more hash bit
choosing the parity of y; the first counter giving a curve point wins (try-and-increment:
two tries on average; its timing depends on the id only on the owner's own machine). This is
a random oracle onto the group in the random-oracle model, and nobody knows the discrete log
of its outputs, which is what 2HashDH needs.

One-shot owner (no round trip): owner o draws a secret scalar r, publishes to the committee
only the blinded points ``a_j = r * H(id_j)`` and Shamir-shares ``rho = r^-1 mod n``.  The
committee holds a shared random key [k] and computes [k * rho] (one checked product); seat i
computes the partial ``P_ij = s_i * a_j`` with its share s_i of k * rho, the seats exchange
partials and every seat combines them by Lagrange interpolation in the exponent:
``T_j = sum_i lambda_i P_ij = k * rho * r * H(id_j) = k * H(id_j)``, the same token for the
same id whichever owner holds it; a token is a PRF value under k, so a seat learns equality
of ids across owners (the match pattern) and nothing else about them.

Shares sit at x = 1..m (MPyC's layout); a degree-t sharing evaluated at consecutive integers
has vanishing (t+1)-th finite differences, so the parity check of the m partials (``combine``)
and the interpolation at 0 from x = 1..t+1 use only small integer coefficients (binomials):
point additions, no scalar multiplication. Partials off one degree-t polynomial "in the
exponent" are detected whenever at most t of m >= 2t+1 are wrong (the Reed-Solomon code has
distance m - t > t).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from math import comb

from coincurve import PublicKey

from dnode.scheduler.errors import SchedulerError

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # n, prime
FIELD_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F  # the curve's field
TAG = b"dnode.psi.h2c.secp256k1.v1"
POINT_BYTES = 33  # compressed: 02/03 and x
HALF = 1 << 128  # a point travels as two field elements: (parity bit, x high) and x low


class TokenError(SchedulerError):
    """Root of the PSI token errors."""


class BadPoint(TokenError):
    """Bytes that are not a point of the group (an owner's input or a seat's partial)."""

    def __init__(self, where: str) -> None:
        self.where = where
        super().__init__(f"{where}: not a point of the group")


class PartialMismatch(TokenError):
    """The seats' partials of one element are not on one degree-t polynomial in the exponent."""

    def __init__(self, element: int, window: int) -> None:
        self.element, self.window = element, window
        super().__init__(
            f"partials of element {element} fail parity check {window}: a seat sent a wrong "
            "partial (or the owner's points differ)"
        )


def point(data: bytes) -> PublicKey:
    try:
        return PublicKey(bytes(data))
    except (ValueError, TypeError):
        raise BadPoint("point") from None


def hash_to_point(domain: bytes, ident: str | bytes) -> bytes:
    """H(id) (33-byte compressed point), separated by ``domain``."""
    raw = ident.encode() if isinstance(ident, str) else bytes(ident)
    head = TAG + len(domain).to_bytes(2, "big") + domain + len(raw).to_bytes(8, "big") + raw
    ctr = 0
    while True:
        h = hashlib.sha256(head + ctr.to_bytes(4, "big")).digest()
        x = int.from_bytes(h, "big")
        if x < FIELD_P:
            parity = hashlib.sha256(head + b"y" + ctr.to_bytes(4, "big")).digest()[0] & 1
            try:
                return PublicKey(bytes([2 + parity]) + h).format()
            except ValueError:
                pass  # x^3 + 7 is not a square: the next counter
        ctr += 1


def new_blinding() -> int:
    """A secret scalar r in [1, n)."""
    return 1 + secrets.randbelow(ORDER - 1)


def scalar_bytes(s: int) -> bytes:
    return (s % ORDER).to_bytes(32, "big")


def mul(p: bytes | PublicKey, scalar: int) -> bytes:
    """scalar * p (compressed); BadPoint for bytes that are no point or a zero scalar."""
    pk = p if isinstance(p, PublicKey) else point(p)
    try:
        return pk.multiply(scalar_bytes(scalar)).format()
    except ValueError:
        raise BadPoint("scalar multiplication") from None


def blind(domain: bytes, ids: Sequence[str | bytes], r: int) -> list[bytes]:
    """The owner's blinded points r * H(id) (what the seats see of its ids)."""
    return [mul(hash_to_point(domain, i), r) for i in ids]


def unblinding(r: int) -> int:
    """rho = r^-1 mod n, the value the owner secret-shares."""
    return pow(r, -1, ORDER)


def split(p: bytes) -> tuple[int, int]:
    """A compressed point as two field elements below 2**129: (parity, x high), x low."""
    v = int.from_bytes(p[1:], "big")
    return ((p[0] - 2) << 128) | (v >> 128), v & (HALF - 1)


def join(hi: int, lo: int) -> bytes:
    if not (0 <= hi < 2 * HALF and 0 <= lo < HALF):
        raise BadPoint("point halves")
    return bytes([2 + (hi >> 128)]) + (((hi & (HALF - 1)) << 128) | lo).to_bytes(32, "big")


def neg(p: bytes) -> bytes:
    """-p: the same x, the other y (flip the compressed prefix)."""
    return bytes([p[0] ^ 1]) + p[1:]


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


def partial(p: bytes | PublicKey, share: int) -> bytes:
    """Seat i's partial s_i * a_j (its share of k * rho in the exponent)."""
    return mul(p, share)


def _sum(points: list[PublicKey]) -> bytes | None:
    """The sum's encoding, or None for the point at infinity."""
    try:
        return PublicKey.combine_keys(points).format()
    except ValueError:
        return None


def _sides(ps: Sequence[PublicKey], coeffs: Sequence[int]) -> tuple[list[PublicKey], list]:
    pos = [p for p, c in zip(ps, coeffs, strict=True) for _ in range(max(c, 0))]
    negs = [p for p, c in zip(ps, coeffs, strict=True) for _ in range(max(-c, 0))]
    return pos, negs


def combine(partials: Sequence[bytes], t: int, element: int = 0) -> bytes:
    """The token k * H(id) from the m seats' partials (x = 1..m), after the parity check."""
    m = len(partials)
    try:
        ps = [PublicKey(bytes(p)) for p in partials]
    except (ValueError, TypeError):
        raise PartialMismatch(element, -1) from None
    if m == 3 and t == 1:  # P1 + P3 = 2 P2; token 2 P1 - P2
        if _sum([ps[0], ps[2]]) != _sum([ps[1], ps[1]]):
            raise PartialMismatch(element, 0)
        tok = _sum([ps[0], ps[0], PublicKey(neg(partials[1]))])
    else:
        for w, row in enumerate(parity(m, t)):
            pos, negs = _sides(ps, row)
            if _sum(pos) != _sum(negs):
                raise PartialMismatch(element, w)
        pos, negs = _sides(ps[: t + 1], interpolation(t))
        a, b = _sum(pos), _sum(negs)
        tok = a if b is None else _sum([point(a), point(neg(b))]) if a is not None else neg(b)
    if tok is None:
        raise PartialMismatch(element, -1)
    return tok


def direct_token(domain: bytes, ident: str | bytes, k: int) -> bytes:
    """k * H(id): what ``combine`` yields (tests, references)."""
    return mul(hash_to_point(domain, ident), k)
