"""Kernel of the statistics family (spec: scheduler.programs.stats.spec).

Opens only what ``needs`` asks for: column sums, sums of squares, the Gram matrix X^T X,
order statistics (secure binary search, one opened bit per step), the minimum or maximum
(secure tournament), counts below thresholds.
Comparisons run on a secure-integer type of the same field with only as many bits as the
declared ranges need (cost grows with the bit length), over whole NumPy-style secure arrays.

Products and openings go through the :class:`dnode.node.mpc.table.TableSession` the party
hands in: checked against a malicious minority when the session runs with checks. The
comparisons themselves are MPyC's semi-honest protocols (docs/protocol.md says what that
leaves open); every bit they open goes through ``s.open`` (error-detecting).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dnode.scheduler.programs.stats.spec import order_ranks


def _retype(stype: Any, x: Any) -> Any:
    """The same shares, as a secure type with fewer bits (cheaper comparisons, same field)."""
    return stype.array(x.share, x.shape)


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    mpc, secint, x = s.mpc, s.secint, s.x
    needs = set(args["needs"])
    n, w = s.rows, s.width
    out: dict[str, Any] = {}
    opened: list[tuple[str, Any]] = []
    if n == 0:  # shapes are public: nothing to hide, nothing to compute
        z = [0] * w
        return {"sum": z, "sumsq": z, "gram": [0] * (w * w), "ranks": [], "order": [],
                "below": [0] * len(args.get("below", [])), "extreme": z}  # fmt: skip
    if "sum" in needs:
        opened.append(("sum", s.sums()))  # local: additions need no communication
    if "sumsq" in needs:
        opened.append(("sumsq", s.sumsq()))  # one degree reduction per column
    if "gram" in needs:
        opened.append(("gram", s.gram()))  # one secure matrix product
    for name, v in opened:
        out[name] = await s.open(v, name)
    p = secint.field.modulus
    if "extreme" in needs:  # a tournament: rows - 1 comparisons, only the extreme is opened
        cmp = mpc.SecInt(int(args["cmp_bits"]), p=p)
        xs = _retype(cmp, x)
        e = mpc.np_amin(xs, axis=0) if args["which"] == "min" else mpc.np_amax(xs, axis=0)
        out["extreme"] = await s.open(e, "extreme")
    if "order" in needs:
        out["ranks"], out["order"] = await _order_stats(s, p, x, n, args)
    if "below" in needs:
        t = [int(v) for v in args["below"]]
        cmp = mpc.SecInt(int(args["cmp_bits"]), p=p)  # the spec sized it (and the field)
        col = _retype(cmp, x)[:, 0]
        d = col.reshape(1, n) - np.array(t, dtype=object).reshape(len(t), 1)
        counts = (d < 0).sum(axis=1)
        out["below"] = await s.open(counts, "below")
    await s.finish()
    return out


async def _order_stats(
    s: Any, p: int, x: Any, n: int, args: dict[str, Any]
) -> tuple[list[int], list[list[int]]]:
    """The k-th smallest value of each column for every rank k the quantiles need.

    Binary search over [lo, hi] (the declared range) for the smallest v with
    #(x <= v) >= k; every step opens one bit per (rank, column) -- the bits spell the answer."""
    ranks = order_ranks(n, list(args["q"]))
    w = x.shape[1]
    lo = np.array([list(args["lo"])] * len(ranks), dtype=object)
    hi = np.array([list(args["hi"])] * len(ranks), dtype=object)
    k = np.array(ranks, dtype=object).reshape(len(ranks), 1)
    mpc = s.mpc
    cmp = mpc.SecInt(int(args["cmp_bits"]), p=p)  # the spec sized it (and the field)
    xs = _retype(cmp, x).reshape(1, n, w)
    while (lo < hi).any():
        mid = (lo + hi) // 2
        d = xs - mid.reshape(len(ranks), 1, w).copy()  # mpyc converts object arrays in place
        count = (d <= 0).sum(axis=1)  # (ranks, columns)
        opened = await s.open(count >= k.copy(), "order-bits")
        bits = np.array(opened, dtype=bool).reshape(len(ranks), w)
        hi = np.where(bits, mid, hi)
        lo = np.where(bits, lo, mid + 1)
    return ranks, [[int(v) for v in row] for row in lo.tolist()]
