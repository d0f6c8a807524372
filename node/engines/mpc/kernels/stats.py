"""Kernel of the statistics family (spec: scheduler.programs.stats.spec).

Opens only what ``needs`` asks for: column sums, sums of squares, the Gram matrix X^T X,
order statistics (secure binary search, one opened bit per step), the minimum or maximum
(secure tournament), counts below thresholds.
Comparisons run on a secure-integer type of the same field with only as many bits as the
declared ranges need (cost grows with the bit length), over whole NumPy-style secure arrays.

Products, comparisons and openings go through the :class:`dnode.node.mpc.table.TableSession`
the party hands in (``s.less_than_zero``, ``s.extreme``, ``s.open``): checked against a
malicious minority when the session runs with checks, MPyC as is otherwise.  An opened minimum
or maximum is clamped to the column's declared range (by the spec's ``finish``): clamping
commutes with order statistics, so an out-of-range value moves it only as far as a legal one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dnode.node.engines.mpc import noise
from dnode.scheduler.programs.stats.spec import order_ranks


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    x = s.x
    needs = set(args["needs"])
    n, w = s.rows, s.width
    out: dict[str, Any] = {}
    opened: list[tuple[str, Any]] = []
    if n == 0:  # shapes are public: nothing to hide, nothing to compute
        z = [0] * w
        return {"sum": z, "sumsq": z, "gram": [0] * (w * w), "ranks": [], "order": [],
                "below": [0] * len(args.get("below", [])), "extreme": z}  # fmt: skip
    if "dp" in args:
        out = await _noisy(s, x, needs, args)
        await s.finish()
        return out
    if "sum" in needs:
        opened.append(("sum", s.sums()))  # local: additions need no communication
    if "sumsq" in needs:
        opened.append(("sumsq", s.sumsq()))  # one degree reduction per column
    if "gram" in needs:
        opened.append(("gram", s.gram()))  # one secure matrix product
    for name, v in opened:
        out[name] = await s.open(v, name)
    bits = int(args.get("cmp_bits", 0))  # the spec sized it (and the field)
    if "extreme" in needs:  # a tournament: rows - 1 comparisons, only the extreme is opened
        lo, hi = args.get("lo"), args.get("hi")
        if lo is not None and hi is not None and s.checked:  # |a - b| <= span: compare fewer
            bits = min(bits, max(b - a for a, b in zip(lo, hi, strict=True)).bit_length() + 2)
        e = await s.extreme(x, args["which"], bits)
        # opened as is: the spec's finish clamps it (clamp(max(x)) = max(clamp(x))), also
        # where a private result is reconstructed (the requester's side)
        out["extreme"] = await s.open(e, "extreme")
    if "order" in needs:
        out["ranks"], out["order"] = await _order_stats(s, x, n, args)
    if "below" in needs:
        t = [int(v) for v in args["below"]]
        col = x[:, 0]
        d = col.reshape(1, n) - np.array(t, dtype=object).reshape(len(t), 1)
        counts = (await s.less_than_zero(d, bits)).sum(axis=1)
        out["below"] = await s.open(counts, "below")
    await s.finish()
    return out


async def _noisy(s: Any, x: Any, needs: set[str], args: dict[str, Any]) -> dict[str, Any]:
    """Differential privacy: the statistics of the clipped table plus discrete Laplace noise
    sampled inside the MPC (:mod:`node.engines.mpc.noise`); only the noisy values are opened."""
    values: dict[str, Any] = {}
    if "below" in needs:  # numeric histogram: the bin counts, not the cumulative ones
        t = [int(v) for v in args["below"]]
        n = s.rows
        d = x[:, 0].reshape(1, n) - np.array(t, dtype=object).reshape(len(t), 1)
        below = (await s.less_than_zero(d, int(args["cmp_bits"]))).sum(axis=1)
        values["bins"] = below[1:] - below[:-1]
    else:
        if "clip" in args:
            c = args["clip"]
            x = await noise.clip(s, x, c["lo"], c["hi"], int(c["bits"]))
        else:  # one-hot categories: with checks every row must be one-hot (else abort)
            await s.check_onehot([(0, int(args["width"]))])
        if "sum" in needs:
            values["sum"] = x.sum(axis=0)
        if "sumsq" in needs:
            values["sumsq"] = s.mul(x, x).sum(axis=0)
        if "gram" in needs:
            values["gram"] = s.matmul(x.T, x).reshape(-1)
    noisy = await noise.add(s, values, args["dp"])
    return {name: await s.open(noisy[name], name) for name in values}


async def _order_stats(
    s: Any, x: Any, n: int, args: dict[str, Any]
) -> tuple[list[int], list[list[int]]]:
    """The k-th smallest value of each column for every rank k the quantiles need.

    Binary search over [lo, hi] (the declared range) for the smallest v with
    #(x <= v) >= k; every step opens one bit per (rank, column) -- the bits spell the answer."""
    ranks = order_ranks(n, list(args["q"]))
    w = x.shape[1]
    lo = np.array([list(args["lo"])] * len(ranks), dtype=object)
    hi = np.array([list(args["hi"])] * len(ranks), dtype=object)
    k = np.array(ranks, dtype=object).reshape(len(ranks), 1)
    bits = int(args["cmp_bits"])  # the spec sized it (and the field)
    span = max(b - a for a, b in zip(args["lo"], args["hi"], strict=True))
    h = await s.ranked(x, list(args["lo"]), max(1, (span + 1).bit_length()), bits)
    while (lo < hi).any():
        mid = (lo + hi) // 2
        count = (await s.below(h, mid + 1)).sum(axis=1)  # #(x <= mid), (ranks, columns)
        below = await s.less_than_zero(count - k.copy(), bits)  # count < k
        opened = await s.open(1 - below, "order-bits")
        ok = np.array(opened, dtype=bool).reshape(len(ranks), w)
        live = lo < hi  # a converged (rank, column) stays put: never beyond hi, even when
        hi = np.where(live & ok, mid, hi)  # values above hi leave fewer than k below it
        lo = np.where(live & ~ok, mid + 1, lo)
    return ranks, [[int(v) for v in row] for row in lo.tolist()]
