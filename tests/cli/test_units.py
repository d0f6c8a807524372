from __future__ import annotations

import pytest

from dnode.cli.units import fmt_eth, parse_amount


@pytest.mark.parametrize(
    ("text", "wei"),
    [
        ("1", 10**18),
        ("0.5ether", 5 * 10**17),
        ("2 gwei", 2 * 10**9),
        ("1000wei", 1000),
        ("0.3 ETH", 3 * 10**17),
    ],
)
def test_parse_amount(text: str, wei: int) -> None:
    assert parse_amount(text) == wei


@pytest.mark.parametrize("text", ["", "lots", "-1", "1.5wei", "1 btc", "1e18"])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_fmt_eth() -> None:
    assert fmt_eth(10**17) == "0.1 ETH" and fmt_eth(2 * 10**18) == "2 ETH"
