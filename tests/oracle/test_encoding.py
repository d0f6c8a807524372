from __future__ import annotations

from fractions import Fraction

import pytest

from dnode.oracle.encoding import AggregateResult
from dnode.oracle.errors import OracleError


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (Fraction(688, 15), "45.866666666666666667"),
        (Fraction(-1, 3), "-0.333333333333333333"),
        (Fraction(2, 3), "0.666666666666666667"),
        (Fraction(5), "5"),
        (Fraction(-5, 2), "-2.5"),
    ],
)
def test_fixed_point_rounds_half_away_from_zero(x: Fraction, text: str) -> None:
    r = AggregateResult.from_fraction(x, 7)
    assert str(r) == text
    assert AggregateResult.decode(r.encode()) == r


def test_decoding_garbage_is_a_typed_error() -> None:
    with pytest.raises(OracleError):
        AggregateResult.decode(b"\x01\x02")
