"""ABI encoding of public results, so contracts and off-chain readers decode the same bytes.

An aggregate result is ``abi.encode(int256[] values, uint8 decimals, uint256 count)``: each
value is fixed-point with ``decimals`` decimal places (exact when the true value has at most
that many); ``count`` is the number of input values. ``mpc.sum`` and ``mpc.mean`` have one
value, ``mpc.variance`` two (mean, population variance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from dnode.oracle.errors import OracleError

RESULT_TYPES = ["int256[]", "uint8", "uint256"]
DEFAULT_DECIMALS = 18
MAX_VALUES = 16


def to_fixed(x: Fraction, decimals: int = DEFAULT_DECIMALS) -> int:
    """Round half away from zero: what a person expects when reading a printed mean."""
    scaled = x * 10**decimals
    q, r = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * r >= scaled.denominator:
        q += 1
    return q if scaled >= 0 else -q


def fmt_fixed(value: int, decimals: int) -> str:
    s = f"{Decimal(value).scaleb(-decimals):f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


SHOWN_DIGITS = 9  # significant digits in human-readable lines (JSON keeps every decimal)


def fmt_short(value: int, decimals: int, digits: int = SHOWN_DIGITS) -> str:
    """``value / 10**decimals`` to ``digits`` significant digits (never dropping integer
    digits), for people: 18 decimals of a fixed-point mean suggest a precision the inputs
    (and CKKS) do not have. Rounded half to even."""
    d = Decimal(value).scaleb(-decimals)
    if d == 0:
        return "0"
    places = max(0, min(decimals, digits - 1 - d.adjusted()))
    s = f"{d.quantize(Decimal(1).scaleb(-places)):f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


@dataclass(frozen=True)
class AggregateResult:
    values: tuple[int, ...]  # each scaled by 10**decimals
    decimals: int
    count: int

    @classmethod
    def from_fractions(
        cls, xs: Sequence[Fraction], count: int, decimals: int = DEFAULT_DECIMALS
    ) -> AggregateResult:
        return cls(tuple(to_fixed(x, decimals) for x in xs), decimals, count)

    @classmethod
    def from_fraction(
        cls, x: Fraction, count: int, decimals: int = DEFAULT_DECIMALS
    ) -> AggregateResult:
        return cls.from_fractions([x], count, decimals)

    @property
    def value(self) -> int:
        """The first (for sum and mean, the only) value."""
        return self.values[0]

    def encode(self) -> bytes:
        return encode(RESULT_TYPES, [list(self.values), self.decimals, self.count])

    @classmethod
    def decode(cls, data: bytes) -> AggregateResult:
        try:
            values, decimals, count = decode(RESULT_TYPES, data)
        except (DecodingError, ValueError, TypeError, OverflowError) as e:
            raise OracleError(f"result is not an encoded aggregate: {e}") from None
        if not 1 <= len(values) <= MAX_VALUES:
            raise OracleError(f"result has {len(values)} values")
        return cls(tuple(int(v) for v in values), int(decimals), int(count))

    def as_decimal(self) -> Decimal:
        return Decimal(self.value).scaleb(-self.decimals)

    def texts(self) -> list[str]:
        return [fmt_fixed(v, self.decimals) for v in self.values]

    def __str__(self) -> str:
        return ", ".join(self.texts())


def result_digest(result: bytes) -> bytes:
    return keccak(result)
