"""Ether amounts as people type them: ``1``, ``0.5ether``, ``2 gwei``, ``1000wei``.

One parser for every layer (the CLI's flags, an owner agent's config file)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

UNITS = {"ether": 10**18, "eth": 10**18, "gwei": 10**9, "wei": 1}


def parse_amount(text: str) -> int:
    """Wei in ``text`` (no unit: ether); ValueError with a one-line reason otherwise."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not an amount (try 1.5ether, 2gwei, 1000wei)")
    unit = (m.group(2) or "ether").lower()
    if unit not in UNITS:
        raise ValueError(f"unknown unit {m.group(2)!r} (ether, gwei or wei)")
    try:
        wei = Decimal(m.group(1)) * UNITS[unit]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if wei != wei.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of wei")
    return int(wei)
