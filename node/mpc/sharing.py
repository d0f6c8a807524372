"""Data-owner side of dnode's MPC: parse, encode and Shamir-share input values.

This module deliberately does NOT import :mod:`mpyc` at all.  Importing any ``mpyc``
module runs ``mpyc/__init__.py``, which parses ``sys.argv`` (and may ``SystemExit`` on
e.g. an ambiguous ``--out`` prefix), calls ``logging.basicConfig(stream=sys.stdout)`` and
may install an event-loop policy -- none of which is acceptable inside the node daemon or
CLI.  Instead the two MPyC rules we depend on are re-implemented here and checked against
MPyC itself in ``tests/node/test_mpc.py``:

Field modulus rule (``mpyc.sectypes._pfield`` + ``mpyc.finfields.find_prime_root``)
    ``secint(l)`` lives in GF(p) where ``p`` is the LARGEST prime below ``2**(l + k + 2)``
    with ``p % 4 == 3`` (a Blum prime), ``k`` = MPyC's security parameter (``-K``, default
    30).  (``secfxp(l, f)`` uses ``2**(l + f + k + 2)``; dnode computes fixed-point sums
    with ``secint`` over the scaled integers, see :func:`encode`, so only the ``secint``
    field is used.)  For ``l + k + 2 <= 2`` MPyC uses p = 3.

Sharing rule (``mpyc.thresha.random_split``)
    Secret ``s`` is shared with a uniformly random polynomial ``f`` of degree ``t`` with
    ``f(0) = s``; party ``i`` (0-based) holds ``f(i + 1) mod p``.  MPyC requires
    ``0 <= t`` and ``2t < m``.  Inside the party a share is injected with
    ``secint(field(share))`` / ``secint.array(field.array(shares))`` -- exactly what
    ``mpc.input`` does with the shares it receives.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import secrets
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol

from dnode.node.errors import InputError

__all__ = [
    "DEFAULT_BIT_LENGTH",
    "DEFAULT_MAX_VALUES",
    "SEC_PARAM",
    "RandomSource",
    "encode",
    "field_modulus",
    "is_probable_prime",
    "load_inputs",
    "parse_number",
    "reconstruct",
    "share",
    "task_modulus",
    "to_signed",
    "value_bound",
]

#: MPyC's default security parameter k (``-K``); the party passes it explicitly.
SEC_PARAM = 30
#: Default bit length of the secure integers (total bits, fractional bits included).
DEFAULT_BIT_LENGTH = 64
#: Default maximum number of values (over all owners) a sum may contain.
DEFAULT_MAX_VALUES = 1 << 16

Kind = Literal["int", "fixed"]


class RandomSource(Protocol):
    def randbelow(self, n: int, /) -> int: ...


# --------------------------------------------------------------------------- field


def is_probable_prime(n: int) -> bool:
    """Miller-Rabin: deterministic bases (exact below 3.3e24) plus 16 random bases."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for q in small:
        if n % q == 0:
            return n == q
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    bases = list(small[:12])
    if n.bit_length() > 80:
        bases += [2 + secrets.randbelow(n - 3) for _ in range(16)]
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


@functools.cache
def field_modulus(bit_length: int, *, sec_param: int = SEC_PARAM) -> int:
    """Prime modulus of the field of MPyC's ``secint(bit_length)`` (with ``-K sec_param``).

    Largest prime ``p < 2**(bit_length + sec_param + 2)`` with ``p % 4 == 3``.
    """
    if not isinstance(bit_length, int) or bit_length < 1:
        raise ValueError(f"bit_length must be a positive int, got {bit_length!r}")
    if sec_param < 0:
        raise ValueError(f"sec_param must be >= 0, got {sec_param!r}")
    bits = bit_length + sec_param + 2
    if bits <= 2:
        return 3
    p = (1 << bits) - 1  # odd; 2**bits - 1 is 3 mod 4
    while True:
        if p % 4 == 3 and is_probable_prime(p):
            return p
        p -= 2


def task_modulus(params: Any) -> int:
    """The prime owners share a task's inputs over: the program's own (``spec.field_prime``,
    e.g. a group order) or MPyC's for the task's bit length."""
    return params.field_prime or field_modulus(params.bit_length)


def to_signed(x: int, modulus: int) -> int:
    """Map a field element to MPyC's signed representative in (-p/2, p/2]."""
    x %= modulus
    return x - modulus if x > modulus // 2 else x


# --------------------------------------------------------------------------- encoding


def value_bound(bit_length: int, max_values: int) -> int:
    """Largest |encoded value| such that a sum of ``max_values`` of them fits ``secint(l)``.

    ``secint(l)`` represents integers in ``[-2**(l-1), 2**(l-1))``; we require
    ``max_values * |x| <= 2**(l-1) - 1``.
    """
    if bit_length < 2:
        raise ValueError(f"bit_length must be >= 2, got {bit_length}")
    if max_values < 1:
        raise ValueError(f"max_values must be >= 1, got {max_values}")
    return ((1 << (bit_length - 1)) - 1) // max_values


def parse_number(text: str) -> Fraction:
    """Parse a decimal number string exactly (``'-1.25'``, ``'3'``, ``'1e-3'``).

    Raises ``ValueError`` for anything else (including NaN/Infinity and ``'1/3'``).
    """
    s = text.strip()
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not s or not d.is_finite():
        raise ValueError(f"{text!r} is not a number")
    return Fraction(d)


def encode(
    values: list[str],
    kind: Kind,
    frac_bits: int,
    bit_length: int = DEFAULT_BIT_LENGTH,
    *,
    max_values: int = DEFAULT_MAX_VALUES,
    squares: bool = False,
    source: str = "<inputs>",
) -> list[int]:
    """Encode decimal strings exactly as the (signed) integers the MPC sums.

    With ``squares`` (programs such as ``mpc.variance`` that also sum ``x**2``, scaled by
    ``2**(2*frac_bits)``) the bound is ``isqrt(value_bound)`` so the sum of squares fits too.

    * ``kind="int"``: every value must be integral (``'3'``, ``'-7'``, ``'2.0'``, ``'1e3'``);
      ``frac_bits`` must be 0.
    * ``kind="fixed"``: ``round(x * 2**frac_bits)`` computed exactly on the decimal value
      (Python's round-half-to-even on the exact Fraction; no float is involved).

    Every encoded value must satisfy ``|v| <= value_bound(bit_length, max_values)`` so
    the sum of up to ``max_values`` values fits in ``secint(bit_length)`` (which is far
    below the field modulus, so it can never wrap around).  ``source`` names the inputs
    file in :class:`InputError` messages.
    """
    if kind not in ("int", "fixed"):
        raise ValueError(f"kind must be 'int' or 'fixed', got {kind!r}")
    if not isinstance(frac_bits, int) or frac_bits < 0:
        raise ValueError(f"frac_bits must be an int >= 0, got {frac_bits!r}")
    if kind == "int" and frac_bits != 0:
        raise ValueError(f"kind 'int' requires frac_bits=0, got {frac_bits}")
    if frac_bits >= bit_length - 1:
        raise ValueError(f"frac_bits={frac_bits} leaves no integer bits in bit_length={bit_length}")
    bound = value_bound(bit_length, max_values)
    if squares:
        bound = math.isqrt(bound)
    scale = 1 << frac_bits
    out: list[int] = []
    for n, text in enumerate(values, 1):
        plain = text.strip()
        digits = plain[1:] if plain.startswith("-") else plain
        if digits.isdecimal() and digits.isascii():
            # plain integers (the common case) need no exact-decimal parse: 10x faster
            x = Fraction(int(plain))
        else:
            try:
                x = parse_number(text)
            except ValueError as e:
                raise InputError(source, f"value {n}: {e}") from None
        if kind == "int":
            if x.denominator != 1:
                raise InputError(source, f"value {n}: {text.strip()!r} is not an integer")
            v = int(x)
        else:
            v = round(x * scale)
        if abs(v) > bound:
            limit = Fraction(bound, scale)
            raise InputError(
                source,
                f"value {n}: {text.strip()!r} is out of range (|x| <= {float(limit):.6g} "
                f"for bit_length={bit_length}, frac_bits={frac_bits}, "
                f"max_values={max_values})",
            )
        out.append(v)
    return out


def load_inputs(path: str | Path) -> list[str]:
    """Read one number per line (or a single-column CSV).

    ``#`` starts a comment (whole-line or trailing); blank lines are ignored.  A CSV row
    may have trailing empty cells (``'5,'``) but only one non-empty cell.  Headers are
    not accepted -- comment them out with ``#``.  Returns the number strings (stripped);
    use :func:`encode` to turn them into field integers.
    """
    p = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read: {e.strerror if isinstance(e, OSError) else e}") from None
    out: list[str] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "," in line or '"' in line:
            try:
                cells = [c.strip() for c in next(csv.reader([line]))]
            except csv.Error as e:
                raise InputError(p, f"line {lineno}: bad CSV: {e}") from None
            cells = [c for c in cells if c]
            if len(cells) != 1:
                raise InputError(
                    p, f"line {lineno}: expected a single column, got {len(cells)} cells"
                )
            line = cells[0]
        try:
            parse_number(line)
        except ValueError:
            raise InputError(p, f"line {lineno}: {line!r} is not a number") from None
        out.append(line)
    if not out:
        raise InputError(p, "no values")
    return out


# --------------------------------------------------------------------------- Shamir


def share(
    values: list[int],
    m: int,
    t: int,
    modulus: int,
    rng: RandomSource = secrets,  # type: ignore[assignment]
) -> list[list[int]]:
    """Shamir-share each value for ``m`` parties with threshold (degree) ``t``.

    Returns ``shares[i][h]`` = share of ``values[h]`` for party ``i`` (0-based), i.e.
    ``f_h(i + 1) mod modulus`` -- the layout of ``mpyc.thresha.random_split``.  Any
    ``t`` shares are independent of the secret; any ``t + 1`` reconstruct it.
    Coefficients come from ``rng.randbelow``; by default (:mod:`secrets`) from
    :func:`random_below` (one ``os.urandom`` call for all of them).
    """
    if not (isinstance(m, int) and isinstance(t, int)) or t < 0 or 2 * t >= m:
        raise ValueError(f"need 0 <= t and 2t < m (MPyC's rule), got m={m}, t={t}")
    if modulus <= m:
        raise ValueError(f"modulus {modulus} too small for {m} parties")
    shares = [[0] * len(values) for _ in range(m)]
    fast = rng is secrets  # the default: every coefficient from one os.urandom call
    pool = random_below(modulus, t * len(values)) if fast else []
    for h, s in enumerate(values):
        s %= modulus
        # c_t ... c_1 (Horner order)
        coeffs = pool[h * t : (h + 1) * t] if fast else [rng.randbelow(modulus) for _ in range(t)]
        for i in range(m):
            x = i + 1
            y = 0
            for c in coeffs:
                y = (y + c) * x
            shares[i][h] = (y + s) % modulus
    return shares


def random_below(modulus: int, count: int) -> list[int]:
    """``count`` random elements of [0, modulus) from ONE ``os.urandom`` call: each reduces
    128 bits more than the modulus has, so its distance from uniform is below 2**-128."""
    k = (modulus.bit_length() + 7) // 8 + 16
    raw = os.urandom(k * count)
    fb = int.from_bytes
    return [fb(raw[i : i + k], "big") % modulus for i in range(0, k * count, k)]


def np_random_split(field: Any, s: Any, t: int, m: int) -> Any:
    """Drop-in for ``mpyc.thresha.np_random_split`` (the re-sharing of every degree
    reduction; installed by :mod:`node.mpc.party`): the same (m, n) matrix of Shamir shares,
    its coefficients from :func:`random_below` (one system call, not one per coefficient)
    and every party's polynomial evaluated by Horner's rule over numpy object arrays (no
    Vandermonde matrix product). Prime fields only; others go to MPyC's own."""
    import numpy as np
    from mpyc import thresha

    p = field.modulus
    if not isinstance(p, int):
        return _MPYC_SPLIT.get("np", thresha.np_random_split)(field, s, t, m)
    if isinstance(s, field.array):
        s = s.value
    s = np.asarray(s, dtype=object).reshape(-1)
    n = len(s)
    c = np.empty(t * n, dtype=object)
    c[:] = random_below(p, t * n)
    coeffs = c.reshape(t, n)  # coeffs[j]: the degree j + 1 coefficients
    out = np.empty((m, n), dtype=object)
    for i in range(m):
        x = i + 1
        y = coeffs[t - 1] * x if t else np.zeros(n, dtype=object)
        for j in range(t - 2, -1, -1):
            y = (y + coeffs[j]) * x
        out[i] = (y + s) % p
    return out


#: MPyC's own splitting function, kept by :func:`install_fast_split`
_MPYC_SPLIT: dict[str, Any] = {}


def install_fast_split() -> bool:
    """Use :func:`np_random_split` for MPyC's re-sharing, unless something else (a test's
    deviating party) already replaced MPyC's own; True if installed."""
    from mpyc import thresha

    cur = thresha.np_random_split
    if getattr(cur, "__module__", "") != "mpyc.thresha":
        return False
    _MPYC_SPLIT["np"] = cur
    thresha.np_random_split = np_random_split
    return True


def _lagrange_at(xs: list[int], x_r: int, modulus: int) -> list[int]:
    vec = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * (x_r - xj) % modulus
                den = den * (xi - xj) % modulus
        vec.append(num * pow(den, -1, modulus) % modulus)
    return vec


def reconstruct(
    shares_by_party: dict[int, list[int]],
    t: int,
    modulus: int,
    *,
    signed: bool = True,
) -> list[int]:
    """Recombine secrets from the shares of at least ``t + 1`` parties (0-based keys).

    Interpolates at 0 from the ``t + 1`` lowest party indices; shares of any further
    parties are checked to lie on the same degree-``t`` polynomial (``ValueError`` if
    not).  Returns MPyC's signed representatives unless ``signed=False``.
    """
    parties = sorted(shares_by_party)
    if len(parties) < t + 1:
        raise ValueError(f"need shares of at least t+1={t + 1} parties, got {len(parties)}")
    lengths = {len(shares_by_party[i]) for i in parties}
    if len(lengths) != 1:
        raise ValueError(f"parties hold different numbers of shares: {sorted(lengths)}")
    (n,) = lengths
    base = parties[: t + 1]
    xs = [i + 1 for i in base]
    out = []
    checks = [(i, _lagrange_at(xs, i + 1, modulus)) for i in parties[t + 1 :]]
    vec0 = _lagrange_at(xs, 0, modulus)
    for h in range(n):
        ys = [shares_by_party[i][h] for i in base]
        s = sum(c * y for c, y in zip(vec0, ys, strict=True)) % modulus
        for i, vec in checks:
            if sum(c * y for c, y in zip(vec, ys, strict=True)) % modulus != (
                shares_by_party[i][h] % modulus
            ):
                raise ValueError(f"share {h} of party {i} is inconsistent (degree > {t})")
        out.append(to_signed(s, modulus) if signed else s)
    return out
