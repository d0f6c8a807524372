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
from typing import Any

from coincurve import PublicKey
from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT

from dnode.scheduler.errors import SchedulerError

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # n, prime
FIELD_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F  # the curve's field
TAG = b"dnode.psi.h2c.secp256k1.v1"
POINT_BYTES = 33  # a point or token, compressed: 02/03 and x
PARTIAL_BYTES = 65  # a partial, uncompressed (04, x, y): the receivers parse it without a sqrt
_CTX = GLOBAL_CONTEXT.ctx
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


# ---- libsecp256k1 directly (cffi): the per-element hot path of every seat ----------------


def _parse(data: bytes) -> Any:
    """A parsed point (``secp256k1_pubkey *``); None if ``data`` is no point of the curve.
    Uncompressed (65 bytes) parses without a square root: partials travel that way."""
    pk = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_parse(_CTX, pk, data, len(data)):
        return None
    return pk


def _ser(pk: Any, compressed: bool = True) -> bytes:
    n = 33 if compressed else 65
    out = _ffi.new("unsigned char[]", n)
    size = _ffi.new("size_t *", n)
    flag = _lib.SECP256K1_EC_COMPRESSED if compressed else _lib.SECP256K1_EC_UNCOMPRESSED
    _lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, pk, flag)
    return bytes(_ffi.buffer(out, n))


def _add(*pks: Any) -> Any:
    """The sum of parsed points; None for the point at infinity."""
    out = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ec_pubkey_combine(_CTX, out, _ffi.new("secp256k1_pubkey *[]", pks),
                                            len(pks)):  # fmt: skip
        return None
    return out


def _same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and _lib.secp256k1_ec_pubkey_cmp(_CTX, a, b) == 0


def _negated(pk: Any) -> Any:
    out = _ffi.new("secp256k1_pubkey *")
    _ffi.memmove(out, pk, _ffi.sizeof("secp256k1_pubkey"))
    _lib.secp256k1_ec_pubkey_negate(_CTX, out)
    return out


def hash_to_point(domain: bytes, ident: str | bytes) -> bytes:
    """H(id) (33-byte compressed point), separated by ``domain``."""
    return _hash_into(domain, ident, _ffi.new("secp256k1_pubkey *"))


def _hash_into(domain: bytes, ident: str | bytes, pk: Any) -> bytes:
    """``hash_to_point``, also leaving the parsed point in ``pk`` (no second parse)."""
    raw = ident.encode() if isinstance(ident, str) else bytes(ident)
    head = TAG + len(domain).to_bytes(2, "big") + domain + len(raw).to_bytes(8, "big") + raw
    ctr = 0
    while True:
        h = hashlib.sha256(head + ctr.to_bytes(4, "big")).digest()
        x = int.from_bytes(h, "big")
        if x < FIELD_P:
            parity = hashlib.sha256(head + b"y" + ctr.to_bytes(4, "big")).digest()[0] & 1
            enc = bytes([2 + parity]) + h
            # else x^3 + 7 is not a square: the next counter
            if _lib.secp256k1_ec_pubkey_parse(_CTX, pk, enc, 33):
                return enc
        ctr += 1


def new_blinding() -> int:
    """A secret scalar r in [1, n)."""
    return 1 + secrets.randbelow(ORDER - 1)


def scalar_bytes(s: int) -> bytes:
    return (s % ORDER).to_bytes(32, "big")


def mul(p: bytes, scalar: int) -> bytes:
    """scalar * p (compressed); BadPoint for bytes that are no point or a zero scalar."""
    pk = _parse(bytes(p))
    if pk is None or not _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, pk, scalar_bytes(scalar)):
        raise BadPoint("scalar multiplication")
    return _ser(pk)


def blind(domain: bytes, ids: Sequence[str | bytes], r: int) -> list[bytes]:
    """The owner's blinded points r * H(id) (what the seats see of its ids): the same as
    ``[mul(hash_to_point(domain, i), r) for i in ids]``, with one parsed point, output
    buffer and scalar reused for every id (the owner's hot path)."""
    k = scalar_bytes(r)
    pk = _ffi.new("secp256k1_pubkey *")
    out = _ffi.new("unsigned char[]", 33)
    size = _ffi.new("size_t *", 33)
    tweak, ser = _lib.secp256k1_ec_pubkey_tweak_mul, _lib.secp256k1_ec_pubkey_serialize
    flag = _lib.SECP256K1_EC_COMPRESSED
    res = []
    for i in ids:
        _hash_into(domain, i, pk)
        if not tweak(_CTX, pk, k):
            raise BadPoint("scalar multiplication")
        size[0] = 33
        ser(_CTX, out, size, pk, flag)
        res.append(bytes(_ffi.buffer(out, 33)))
    return res


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


def partial(p: bytes, share: int) -> bytes:
    """Seat i's partial s_i * a_j (its share of k * rho in the exponent), uncompressed."""
    pk = _parse(p)
    if pk is None or not _lib.secp256k1_ec_pubkey_tweak_mul(_CTX, pk, scalar_bytes(share)):
        raise BadPoint("partial")
    return _ser(pk, compressed=False)


def partials(points: Sequence[bytes], share: int) -> bytes:
    """``partial`` of every point, concatenated (PARTIAL_BYTES each): one parsed point and
    one output buffer reused for every element (a seat's hot path)."""
    k = scalar_bytes(share)
    pk = _ffi.new("secp256k1_pubkey *")
    n = len(points)
    out = _ffi.new("unsigned char[]", PARTIAL_BYTES * max(n, 1))
    size = _ffi.new("size_t *")
    parse, tweak, ser = (_lib.secp256k1_ec_pubkey_parse, _lib.secp256k1_ec_pubkey_tweak_mul,
                         _lib.secp256k1_ec_pubkey_serialize)  # fmt: skip
    flag = _lib.SECP256K1_EC_UNCOMPRESSED
    for j, p in enumerate(points):
        if not parse(_CTX, pk, p, len(p)) or not tweak(_CTX, pk, k):
            raise BadPoint("partial")
        size[0] = PARTIAL_BYTES
        ser(_CTX, out + PARTIAL_BYTES * j, size, pk, flag)
    return bytes(_ffi.buffer(out, PARTIAL_BYTES * n))


def _sides(ps: Sequence[Any], coeffs: Sequence[int]) -> tuple[list[Any], list[Any]]:
    pos = [p for p, c in zip(ps, coeffs, strict=True) for _ in range(max(c, 0))]
    negs = [p for p, c in zip(ps, coeffs, strict=True) for _ in range(max(-c, 0))]
    return pos, negs


def combine(partials: Sequence[bytes], t: int, element: int = 0) -> bytes:
    """The token k * H(id) (compressed) from the m seats' partials (x = 1..m), after the
    parity check (PartialMismatch: a wrong partial, or bytes that are no point)."""
    m = len(partials)
    ps = [_parse(bytes(p)) for p in partials]
    if any(p is None for p in ps):
        raise PartialMismatch(element, -1)
    if m == 3 and t == 1:  # P1 + P3 = 2 P2; token 2 P1 - P2
        if not _same(_add(ps[0], ps[2]), _add(ps[1], ps[1])):
            raise PartialMismatch(element, 0)
        tok = _add(ps[0], ps[0], _negated(ps[1]))
    else:
        for w, row in enumerate(parity(m, t)):
            pos, negs = _sides(ps, row)
            if not _same(_add(*pos), _add(*negs)):
                raise PartialMismatch(element, w)
        pos, negs = _sides(ps[: t + 1], interpolation(t))
        tok = _add(*pos, *[_negated(q) for q in negs])
    if tok is None:
        raise PartialMismatch(element, -1)
    return _ser(tok)


def combine_all(blobs: Sequence[bytes], t: int, count: int, first: int = 0) -> list[bytes]:
    """``combine`` of every element: ``blobs[i]`` holds seat i's ``count`` partials
    (PARTIAL_BYTES each, in element order); element numbers in errors start at ``first``.

    For m = 3, t = 1 (the committee's usual shape) one pass with the parsed points, pointer
    arrays and output buffer reused: the parity check P1 + P3 - 2 P2 = 0 is ONE point sum
    (libsecp256k1's combine fails exactly when the sum is the point at infinity) and the
    token 2 P1 - P2 another. Other shapes: ``combine`` per element."""
    m, size = len(blobs), PARTIAL_BYTES
    if any(len(b) < size * count for b in blobs):
        raise PartialMismatch(first, -1)
    if not (m == 3 and t == 1):
        return [
            combine([b[size * j : size * (j + 1)] for b in blobs], t, first + j)
            for j in range(count)
        ]
    bufs = [_ffi.cast("unsigned char *", _ffi.from_buffer(b)) for b in blobs]
    p1, p2, p3, n2, tok = (_ffi.new("secp256k1_pubkey *") for _ in range(5))
    check = _ffi.new("secp256k1_pubkey *[4]", [p1, p3, n2, n2])  # P1 + P3 - 2 P2
    token = _ffi.new("secp256k1_pubkey *[3]", [p1, p1, n2])  # 2 P1 - P2
    zero = _ffi.new("secp256k1_pubkey *")
    out = _ffi.new("unsigned char[]", 33)
    osize = _ffi.new("size_t *")
    parse, comb = _lib.secp256k1_ec_pubkey_parse, _lib.secp256k1_ec_pubkey_combine
    ser, neg = _lib.secp256k1_ec_pubkey_serialize, _lib.secp256k1_ec_pubkey_negate
    move, width = _ffi.memmove, _ffi.sizeof("secp256k1_pubkey")
    flag = _lib.SECP256K1_EC_COMPRESSED
    b1, b2, b3 = bufs
    res = []
    for j in range(count):
        off = size * j
        if not (parse(_CTX, p1, b1 + off, size) and parse(_CTX, p2, b2 + off, size)
                and parse(_CTX, p3, b3 + off, size)):  # fmt: skip
            raise PartialMismatch(first + j, -1)
        move(n2, p2, width)
        neg(_CTX, n2)
        if comb(_CTX, zero, check, 4):  # a sum that is not infinity: the check fails
            raise PartialMismatch(first + j, 0)
        if not comb(_CTX, tok, token, 3):
            raise PartialMismatch(first + j, -1)
        osize[0] = 33
        ser(_CTX, out, osize, tok, flag)
        res.append(bytes(_ffi.buffer(out, 33)))
    return res


def direct_token(domain: bytes, ident: str | bytes, k: int) -> bytes:
    """k * H(id): what ``combine`` yields (tests, references)."""
    return mul(hash_to_point(domain, ident), k)
