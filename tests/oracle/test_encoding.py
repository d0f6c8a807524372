from __future__ import annotations

from fractions import Fraction

import pytest

from dnode.oracle.encoding import AggregateResult, to_fixed
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


def test_people_see_nine_significant_digits_json_keeps_every_decimal() -> None:
    from dnode.oracle.codecs import TensorResult
    from dnode.oracle.encoding import fmt_short

    third = AggregateResult.from_fraction(Fraction(1, 3), 3)
    assert third.texts() == ["0.333333333333333333"]  # exact to 18 decimals, as on-chain
    assert fmt_short(third.value, 18) == "0.333333333"
    assert fmt_short(to_fixed(Fraction(842085, 2000)), 18) == "421.0425"  # short values: as is
    assert fmt_short(to_fixed(Fraction(2, 3) * 10**12), 18) == "666666666667"  # integer digits kept
    assert fmt_short(to_fixed(Fraction(-5, 7)), 18) == "-0.714285714"
    assert fmt_short(0, 18) == "0" and fmt_short(7, 0) == "7"
    line = TensorResult(third).line()
    assert "0.333333333 " in line and "0.3333333333" not in line and "--json" in line
    assert TensorResult(third).to_json()["values"] == ["0.333333333333333333"]
