"""A plaintext twin of the query kernel: what it would open, computed in the clear from the
spec's kernel_args and the owners' encoded rows (a fake for property tests of plan -> finish;
the MPC kernel itself is tested in real parties in tests/node/test_query_mpc.py)."""

from __future__ import annotations

from typing import Any

from dnode.scheduler.programs import TaskParams
from dnode.scheduler.programs.stats.spec import order_ranks


def reveal(params: TaskParams, encoded: list[list[int]]) -> tuple[dict[str, Any], int]:
    spec = params.spec
    args = spec.kernel_args(params)
    w = spec.width(params)
    rows = [v[i : i + w] for v in encoded for i in range(0, len(v), w)]
    groups = args["groups"] or [[]]
    G = len(groups)

    def ev(p: Any, r: list[int]) -> int:
        if isinstance(p, int):
            return p
        if "lt" in p:
            return int(r[p["lt"][0]] < p["lt"][1])
        if "hot" in p:
            return sum(r[o] for o in p["hot"])
        if "not" in p:
            return 1 - ev(p["not"], r)
        if "diff" in p:
            return ev(p["diff"][0], r) - ev(p["diff"][1], r)
        ((op, items),) = p.items()
        vals = [ev(q, r) for q in items]
        if op == "sum":
            return sum(vals)
        if op == "and":
            return int(all(vals))
        return int(any(vals))

    m = [[ev(args["where"], r) * all(r[o] for o in g) for g in groups] for r in rows]
    out: dict[str, Any] = {}
    trivial = args["where"] == 1 and not args["groups"]
    if not trivial:
        out["count"] = [sum(mr[g] for mr in m) for g in range(G)]
    out["sum"], out["sumsq"], out["cross"] = [], [], []
    for g in range(G):
        sel = [r for r, mr in zip(rows, m, strict=True) if mr[g]]
        out["sum"] += [sum(r[o] for r in sel) for o in args["sum"]]
        out["sumsq"] += [sum(r[o] ** 2 for r in sel) for o in args["sumsq"]]
        out["cross"] += [sum(r[a] * r[b] for r in sel) for a, b in args["cross"]]
    if not (args["sum"] or args["sumsq"] or args["cross"]):
        del out["sum"], out["sumsq"], out["cross"]
    for which in ("min", "max"):
        if args[which]:
            vals = []
            for g in range(G):
                for off, lo, hi in args[which]:
                    sel = [r[off] for r, mr in zip(rows, m, strict=True) if mr[g]]
                    away = hi + 1 if which == "min" else lo - 1
                    vals.append((min if which == "min" else max)(sel or [away]))
            out[which] = vals
    if args["quantile"]:
        sizes = out.get("count", [len(rows)])
        keys, vals = [], []
        for g in range(G):
            for e, (off, _lo, hi, qs) in enumerate(args["quantile"]):
                sel = sorted(r[off] for r, mr in zip(rows, m, strict=True) if mr[g])
                for k in order_ranks(sizes[g], list(qs)) if sizes[g] else [1]:
                    keys.append([e, g, k])
                    vals.append(sel[k - 1] if sel else hi)
        out["order_keys"], out["order"] = keys, vals
    return out, len(rows)
