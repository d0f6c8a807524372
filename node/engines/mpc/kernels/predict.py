"""Kernel of ``ml.predict`` (spec and what it reveals: scheduler.programs.ml.predict): the
score of every row is a public linear combination (no product); one checked comparison per
row gives its class; only the classes are opened (or sealed to the requester)."""

from __future__ import annotations

from typing import Any

import numpy as np


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    if s.rows == 0:
        await s.finish()
        return {"classes": []}
    z = s.x @ np.array([int(v) for v in args["a"]], dtype=object) + int(args["b"])
    cls = await s.negative(-z, int(args["cmp_bits"]))  # [z > 0]
    return {"classes": await s.open(cls, "classes")}
