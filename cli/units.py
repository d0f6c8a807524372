"""Ether amounts as people type them: ``1``, ``0.5ether``, ``2 gwei``, ``1000wei``."""

from __future__ import annotations

from decimal import Decimal

import click

from dnode.contracts.units import UNITS, parse_amount

__all__ = ["AMOUNT", "UNITS", "fmt_eth", "parse_amount"]


def fmt_eth(wei: int) -> str:
    s = f"{Decimal(wei) / 10**18:f}"
    return (s.rstrip("0").rstrip(".") if "." in s else s) + " ETH"


class Amount(click.ParamType):
    name = "amount"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_amount(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


AMOUNT = Amount()
