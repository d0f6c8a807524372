"""Test kernel (tests/node/test_dp_noise.py): sample discrete Laplace noise inside the MPC,
add it to a public offset, and return every seat's own share of each noised value (gathered
by exchange, so every party returns the same) with the opened noised values."""

from __future__ import annotations

import json
from typing import Any

from dnode.node.engines.mpc import noise

OFFSET = 1000


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    z = (await noise.sample(s, args["dp"]))["z"]
    v = z + OFFSET
    mine = await s.shares_of(v)
    views = [json.loads(b) for b in await s.exchange(json.dumps(mine).encode(), "views")]
    opened = await s.open(v, "z")
    await s.finish()
    return {"views": views, "opened": opened}
