"""Kernel of test.dot: one secure matrix product (X^T X of the two columns), one opening.

``s`` is the party's TableSession: its products and openings are checked against a malicious
minority, and each owner's witness bounds its cross product (the spec's ``moments = 2``)."""

from __future__ import annotations

from typing import Any


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    if s.rows == 0:
        return {"dot": 0}
    gram = s.gram()
    (dot,) = await s.open(gram[0, 1], "dot")
    return {"dot": dot}
