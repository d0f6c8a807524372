"""ABI encoding of public results, so contracts and off-chain readers decode the same bytes.

An aggregate result is ``abi.encode(int256 value, uint8 decimals, uint256 count)``: the value is
fixed-point with ``decimals`` decimal places (exact when the true value has at most that many).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from oracle.errors import OracleError

RESULT_TYPES = ["int256", "uint8", "uint256"]
DEFAULT_DECIMALS = 18


@dataclass(frozen=True)
class AggregateResult:
    value: int  # scaled by 10**decimals
    decimals: int
    count: int

    @classmethod
    def from_fraction(
        cls, x: Fraction, count: int, decimals: int = DEFAULT_DECIMALS
    ) -> AggregateResult:
        scaled = x * 10**decimals
        # round half away from zero: what a person expects when reading a printed mean
        q, r = divmod(abs(scaled.numerator), scaled.denominator)
        if 2 * r >= scaled.denominator:
            q += 1
        return cls(q if scaled >= 0 else -q, decimals, count)

    def encode(self) -> bytes:
        return encode(RESULT_TYPES, [self.value, self.decimals, self.count])

    @classmethod
    def decode(cls, data: bytes) -> AggregateResult:
        try:
            value, decimals, count = decode(RESULT_TYPES, data)
        except (DecodingError, ValueError, TypeError) as e:
            raise OracleError(f"result is not an encoded aggregate: {e}") from None
        return cls(int(value), int(decimals), int(count))

    def as_decimal(self) -> Decimal:
        return Decimal(self.value).scaleb(-self.decimals)

    def __str__(self) -> str:
        d = self.as_decimal()
        s = f"{d:f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s


def result_digest(result: bytes) -> bytes:
    return keccak(result)
