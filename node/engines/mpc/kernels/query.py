"""Kernel of the ``query`` program (spec: scheduler.programs.query.spec).

0. The rows go in batches (``TableSession.batches``, 25,000 rows, one owner's rows each), the
   steps below per batch, every batch's products verified (a Guard epoch) before the next
   starts: a party holds one batch's products; the sums and extremes carry over. Quantiles
   need the whole table: a query with one runs as a single batch.
1. With checks, every owner's one-hot columns are proven 0/1 with one 1 per row.
2. WHERE: every ``[x < t]`` atom of the predicate in ONE batch of secure comparisons
   (``s.less_than_zero`` on x - t; with checks an x out of its declared range aborts), then the
   predicate's tree: NOT = 1 - a, AND = a * b, OR = a + b - a * b, equality and BETWEEN as a
   difference of two atoms, categorical = and IN as sums of one-hot entries (no comparison).
3. Groups: the product of the GROUP BY columns' one-hot entries, times the WHERE bit: a 0/1
   matrix M (rows x groups).
4. Per group, opened: the size (M's column sums), M^T V for V the summed columns, their squares
   and cross products (one secure matrix product), the extreme of each MIN/MAX column with
   masked-out rows moved just outside the declared range (hi + 1 for MIN, lo - 1 for MAX)
   first, and the order statistics of each quantile column (masked rows moved to hi + 1; a
   secure binary search over the declared range, one opened bit per step and rank).
5. Differential privacy (``dp``): sizes and sums get discrete Laplace noise sampled in the MPC
   (:mod:`node.engines.mpc.noise`); MIN, MAX and quantile columns open no extreme and run no
   search: per (column, group) the masked values are compared with the ``dp_bins`` bin edges
   (counts below each edge, summed over batches), the bin counts get noise and only they are
   opened -- stats.OrderStat's noisy histogram, per group; the spec reads the answers off it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dnode.node.engines.mpc import noise
from dnode.node.mpc.table import BATCH_ROWS
from dnode.scheduler.programs.stats.spec import order_ranks


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    n, mpc = s.rows, s.mpc
    groups: list[list[int]] = args["groups"]
    G = max(1, len(groups))
    bits = int(args["cmp_bits"])
    ext_bits = int(args.get("ext_bits") or bits)
    out: dict[str, Any] = {}
    if n == 0:
        await s.finish()
        return _empty(args, G)
    onehot = [(int(o), int(k)) for o, k in args["onehot"]]
    # rows in batches (TableSession.batches), each checked before the next: memory stays
    # bounded by a batch; order statistics search the whole table at once (one batch)
    size = n if args["quantile"] else int(args.get("batch_rows") or BATCH_ROWS)
    count = stats = None
    ext: dict[str, list[Any]] = {"min": [], "max": []}
    whole: tuple[Any, Any] | None = None
    hist = list(args.get("hist") or [])
    below = None
    for xb in s.batches(size):
        await s.check_onehot(onehot, s.batch_blocks())
        if "dp" in args:  # DP: summed columns clipped to their declared ranges in the MPC
            xb = await _clipped(s, xb, args["clip"], int(args["clip_bits"]))
        mask = await _where(s, xb, args["where"], int(args.get("where_bits") or bits))
        m = _groups(s, xb, groups, mask)
        c, st = _moments(s, xb, m, args)
        count = c if count is None else count + c
        stats = st if stats is None else stats + st
        for which in ("min", "max"):
            if args[which]:
                v = _masked(s, xb, m, G, args[which], which)
                ext[which].append(await s.extreme(v, which, ext_bits))
        if args["quantile"]:
            whole = (xb, m)
        if hist:
            b = await _below(s, xb, m, G, hist, bits)
            below = b if below is None else below + b
        await s.checkpoint()
    # the extremes of the batches' extremes (one more tournament)
    for which in ("min", "max"):
        if len(ext[which]) > 1:
            ext[which] = [await s.extreme(mpc.np_stack(ext[which]), which, ext_bits)]

    if "dp" in args:  # DP: only the noisy sizes and sums are opened (noise sampled in MPC)
        vals = {k: v for k, v in (("count", count), ("stats", stats)) if v is not None}
        if hist:
            assert below is not None
            vals |= _bins(s.mpc, below, G, hist)
        noisy = await noise.add(s, vals, args["dp"])
        for name, *_ in hist:
            out[name] = await s.open(noisy[name], name)
        count = noisy.get("count")
        if stats is not None:
            stats = noisy["stats"]
    # ---- sizes, sums, squares, cross products, opened together
    if count is not None:
        out["count"] = await s.open(count, "count")
    if stats is not None:
        flat = await s.open(stats, "stats")
        k = [len(args["sum"]), len(args["sumsq"]), len(args["cross"])]
        per = sum(k)
        rows = [flat[g * per : (g + 1) * per] for g in range(G)]
        out["sum"] = [v for r in rows for v in r[: k[0]]]
        out["sumsq"] = [v for r in rows for v in r[k[0] : k[0] + k[1]]]
        out["cross"] = [v for r in rows for v in r[k[0] + k[1] :]]

    # ---- extremes of the masked columns
    for which in ("min", "max"):
        if ext[which]:
            out[which] = await s.open(ext[which][0], which)

    # ---- order statistics (quantiles): needs the group sizes (opened above, or n)
    if args["quantile"]:
        assert whole is not None
        x, m = whole
        sizes = [int(c) for c in out["count"]] if "count" in out else [n]
        out["order_keys"], out["order"] = await _order(s, x, m, G, args["quantile"], sizes, bits)
    await s.finish()
    return out


async def _clipped(s: Any, x: Any, clip: list[list[int]], bits: int) -> Any:
    """``x`` with each listed column (offset, lo, hi) clamped to [lo, hi] (secure selects)."""
    if not clip:
        return x
    cols = [x[:, o] for o, _, _ in clip]
    v = _stack(s.mpc, cols)
    v = await noise.clip(s, v, [lo for _, lo, _ in clip], [hi for _, _, hi in clip], bits)
    parts = [x[:, j : j + 1] for j in range(x.shape[1])]
    for k, (o, _, _) in enumerate(clip):
        parts[o] = v[:, k : k + 1]
    return s.mpc.np_hstack(parts)


def _groups(s: Any, x: Any, groups: list[list[int]], mask: Any) -> Any:
    """The 0/1 group matrix M (rows x groups) of a batch: the product of the GROUP BY
    columns' one-hot entries, times the WHERE bit; None: every row, one group."""
    n = x.shape[0]
    if groups:
        cols = [_stack(s.mpc, [x[:, g[j]] for g in groups]) for j in range(len(groups[0]))]
        m = cols[0]
        for c in cols[1:]:
            m = s.mul(m, c)
        if mask is not None:
            m = s.mul(m, mask.reshape(n, 1))
        return m
    return None if mask is None else mask.reshape(n, 1)


def _moments(s: Any, x: Any, m: Any, args: dict[str, Any]) -> tuple[Any, Any]:
    """A batch's group sizes (M's column sums; None without groups or WHERE) and M^T V for V
    the summed columns, their squares and cross products (one secure matrix product)."""
    mpc = s.mpc
    vs = [x[:, o] for o in args["sum"]]
    if args["sumsq"]:
        sq = _stack(mpc, [x[:, o] for o in args["sumsq"]])
        vs += _cols(s.mul(sq, sq))
    if args["cross"]:
        a = _stack(mpc, [x[:, i] for i, _ in args["cross"]])
        b = _stack(mpc, [x[:, j] for _, j in args["cross"]])
        vs += _cols(s.mul(a, b))
    stats = None
    if vs:
        v = _stack(mpc, vs)
        stats = v.sum(axis=0).reshape(1, -1) if m is None else s.matmul(m.T, v)
    return (None if m is None else m.sum(axis=0)), stats


def _empty(args: dict[str, Any], G: int) -> dict[str, Any]:
    out: dict[str, Any] = {"count": [0] * G}
    out["sum"] = [0] * (G * len(args["sum"]))
    out["sumsq"] = [0] * (G * len(args["sumsq"]))
    out["cross"] = [0] * (G * len(args["cross"]))
    for which in ("min", "max"):
        if args[which]:
            out[which] = [0] * (G * len(args[which]))
    if args["quantile"]:
        out["order_keys"], out["order"] = [], []
    for name, _, _, _, edges in args.get("hist") or []:
        out[name] = [0] * (G * (len(edges) - 1))
    return out


def _stack(mpc: Any, cols: list[Any]) -> Any:
    """Columns (n,) -> a secure (n, k) array."""
    return mpc.np_stack(cols, axis=1)


def _cols(a: Any) -> list[Any]:
    return [a[:, j] for j in range(a.shape[1])]


async def _where(s: Any, x: Any, pred: Any, bits: int) -> Any:
    """The WHERE bit of every row, a secure (n,) 0/1 vector; None when every row passes."""
    if pred == 1:
        return None
    if pred == 0:
        return x[:, 0] * 0
    atoms: list[tuple[int, int]] = []

    def collect(p: Any) -> None:
        if isinstance(p, int):
            return
        if "lt" in p:
            key = (int(p["lt"][0]), int(p["lt"][1]))
            if key not in atoms:
                atoms.append(key)
            return
        if "hot" in p:
            return
        if "not" in p:
            collect(p["not"])
            return
        for q in next(iter(p.values())):
            collect(q)

    collect(pred)
    lt = None
    if atoms:
        d = _stack(s.mpc, [x[:, o] - t for o, t in atoms])
        lt = await s.less_than_zero(d, bits)

    def prod(a: Any, b: Any) -> Any:
        if isinstance(a, int) or isinstance(b, int):
            return a * b
        return s.mul(a, b)

    def ev(p: Any) -> Any:
        if isinstance(p, int):
            return p
        if "lt" in p:
            assert lt is not None
            return lt[:, atoms.index((int(p["lt"][0]), int(p["lt"][1])))]
        if "hot" in p:
            acc = x[:, p["hot"][0]]
            for o in p["hot"][1:]:
                acc = acc + x[:, o]
            return acc
        if "not" in p:
            return 1 - ev(p["not"])
        if "diff" in p:
            a, b = p["diff"]
            return ev(a) - ev(b)
        ((op, items),) = p.items()
        vals = [ev(q) for q in items]
        acc = vals[0]
        for v in vals[1:]:
            if op == "sum":
                acc = acc + v
            elif op == "and":
                acc = prod(acc, v)
            else:  # or
                acc = acc + v - prod(acc, v)
        return acc

    got = ev(pred)
    return got if not isinstance(got, int) else (x[:, 0] * 0 + got)


def _masked(s: Any, x: Any, m: Any, G: int, spec: list[list[int]], which: str) -> Any:
    """(n, G * len(spec)) group-major: column (g, e) is x[:, off_e] where row is in group g,
    else just outside the declared range (hi + 1 for min and quantiles, lo - 1 for max)."""
    mpc = s.mpc
    xs = [x[:, int(off)] for off, *_ in spec]
    if m is None:
        return _stack(mpc, xs)
    n = x.shape[0]
    k = len(spec)
    xr = _stack(mpc, [xs[e] for _ in range(G) for e in range(k)])  # (n, G*k)
    away = np.array(
        [(hi + 1) if which != "max" else (lo - 1) for _ in range(G) for _, lo, hi, *_ in spec],
        dtype=object,
    )
    mr = _stack(mpc, [m[:, g] for g in range(G) for _ in range(k)])  # (n, G*k)
    # v = x + (1 - m) * (away - x): x inside the group, `away` outside
    return xr + s.mul(1 - mr, np.tile(away, (n, 1)) - xr)


async def _below(s: Any, x: Any, m: Any, G: int, hist: list[Any], bits: int) -> Any:
    """Per (column, group, edge) of ``hist`` (name, offset, lo, hi, edges): how many of the
    batch's rows in the group lie below the edge (masked-out rows sit at hi + 1 = the last
    edge: never counted), all in ONE batch of secure comparisons; flat, column-major."""
    k = len(hist)
    v = _masked(s, x, m, G, [[o, lo, hi] for _, o, lo, hi, _ in hist], "min")  # (n, G*k)
    n = x.shape[0]
    ds = []
    for e, (_, _, _, _, edges) in enumerate(hist):
        t = np.array([int(v_) for v_ in edges], dtype=object).reshape(-1, 1)
        for g in range(G):
            ds.append(v[:, g * k + e].reshape(1, n) - t)
    d = s.mpc.np_vstack(ds)
    return (await s.less_than_zero(d, bits)).sum(axis=1)


def _bins(mpc: Any, below: Any, G: int, hist: list[Any]) -> dict[str, Any]:
    """The bin counts of each histogram (differences of the counts below consecutive edges),
    one release per column: G x bins values, group-major."""
    out, at = {}, 0
    for name, _, _, _, edges in hist:
        e = len(edges)
        parts = [below[at + g * e + 1 : at + (g + 1) * e] - below[at + g * e : at + (g + 1) * e - 1]
                 for g in range(G)]  # fmt: skip
        out[name] = parts[0] if G == 1 else mpc.np_concatenate(parts)
        at += G * e
    return out


async def _order(
    s: Any, x: Any, m: Any, G: int, spec: list[Any], sizes: list[int], bits: int
) -> tuple[list[list[int]], list[int]]:
    """The order statistics every (group, quantile column) needs, by a secure binary search
    over the declared range: the smallest v with #(masked x <= v) >= k."""
    v = _masked(s, x, m, G, [[o, lo, hi] for o, lo, hi, _ in spec], "min")
    k = len(spec)
    W = G * k
    lo0 = [int(spec[e][1]) for _ in range(G) for e in range(k)]
    hi0 = [int(spec[e][2]) for _ in range(G) for e in range(k)]
    rank_lists = []
    for g in range(G):
        for e in range(k):
            n_g = sizes[g]
            rank_lists.append(order_ranks(n_g, list(spec[e][3])) if n_g else [1])
    R = max(len(r) for r in rank_lists)
    ks = np.array([[r[min(i, len(r) - 1)] for r in rank_lists] for i in range(R)], dtype=object)
    lo = np.array([lo0] * R, dtype=object)
    hi = np.array([hi0] * R, dtype=object)
    span = max(b - a for a, b in zip(lo0, hi0, strict=True)) + 1  # masked rows sit at hi + 1
    h = await s.ranked(v, lo0, max(1, (span + 1).bit_length()), bits)
    while (lo < hi).any():
        mid = (lo + hi) // 2
        count = (await s.below(h, mid + 1)).sum(axis=1)  # (R, W): #(v <= mid)
        below = await s.less_than_zero(count - ks.copy(), bits)
        opened = await s.open(1 - below, "order-bits")
        ok = np.array(opened, dtype=bool).reshape(R, W)
        live = lo < hi
        hi = np.where(live & ok, mid, hi)
        lo = np.where(live & ~ok, mid + 1, lo)
    keys, vals = [], []
    for j, ranks in enumerate(rank_lists):
        g, e = divmod(j, k)
        for i, rk in enumerate(ranks):
            keys.append([e, g, int(rk)])
            vals.append(int(lo[i, j]))
    return keys, vals
