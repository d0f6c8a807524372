"""Kernel of ``synth.mst`` (spec: scheduler.programs.synth.spec): MST's noisy marginals.

0. The rows: vertical, the two owners' rows paired by token exactly as ``query.join`` pairs
   them (:func:`dnode.node.engines.mpc.kernels.psi.owner_tokens`), an id an owner holds on
   several rows left out; horizontal, every owner's rows stacked. With
   checks, every owner's one-hot bins are proven one-hot first (an owner sharing 2 or -1
   would count a row twice or subtract it).
1. All noise at once (:func:`dnode.node.engines.mpc.noise.sample`: discrete Laplace drawn
   jointly, no seat knows it): it does not depend on the data.
2. The 1-way marginals (column sums of the one-hot rows: local) + noise, opened to the
   committee; every party computes the same independent estimate Xhat from them.
3. Every pair's 2-way marginal X_ab (one secure product J^T J), the score sum |X_ab - Xhat_ab|
   (one secure comparison per cell), + noise, opened; the maximum spanning tree of the noisy
   scores (public post-processing).
4. The tree's 2-way marginals + noise. Delivered (sealed to the requester): the noisy 1-way
   marginals, the noisy scores, the tree and its noisy 2-way marginals -- nothing else.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from dnode.node.engines.mpc import noise
from dnode.scheduler.programs.synth.spec import independent_estimate, mst_tree, pairs


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    sizes = [int(k) for k in args["sizes"]]
    d, w = len(sizes), sum(sizes)
    offs = [sum(sizes[:i]) for i in range(d)]
    if args["mode"] == "vertical":
        js, n = await _joined(s, args)
    else:
        groups = [(int(o), int(k)) for o, k in args["groups"][0]]
        await s.check_onehot(groups)
        js, n = s, s.rows
    z = await noise.sample(js, args["dp"])
    mpc = js.mpc
    if n:
        x = js.x
        one = x.sum(axis=0)
        gram = js.cross(x, x)  # (w, w): every 2-way marginal is a block of it
    else:
        one = _public(js, [0] * w)
        gram = _public(js, [0] * (w * w)).reshape(w, w)
    one = one + z["one"]
    opened = await js.reveal(one, "synth-one")
    per_col = [opened[o : o + k] for o, k in zip(offs, sizes, strict=True)]
    _, est = independent_estimate(per_col)
    pl = pairs(d)
    block = {p: gram[offs[a] : offs[a] + sizes[a], offs[b] : offs[b] + sizes[b]].reshape(-1)
             for p, (a, b) in zip(range(len(pl)), pl, strict=True)}  # fmt: skip
    if d > 2:
        cap = 2 * int(args.get("max_rows") or 0) or None
        xhat = np.array(
            [min(max(0, v), cap) if cap else max(0, v) for e in est for r in e for v in r],
            dtype=object,
        )  # fmt: skip
        diff = mpc.np_concatenate([block[i] for i in range(len(pl))]) - xhat
        neg = await js.negative(diff, int(args["cmp_bits"]))
        absd = diff - 2 * js.mul(neg, diff)
        at, parts = 0, []
        for a, b in pl:
            k = sizes[a] * sizes[b]
            parts.append(absd[at : at + k].sum())
            at += k
        scores = mpc.np_fromlist(parts) + z["scores"]
        noisy = await js.reveal(scores, "synth-scores")
        tree = mst_tree(d, noisy)
    else:
        scores = _public(js, [0])
        tree = [0]
    cells = [block[i] for i in tree]
    two = mpc.np_concatenate(cells) if len(cells) > 1 else cells[0]
    k = int(two.shape[0])
    two = two + z["two"][:k]
    out = {
        "one": await js.open(one, "synth-one"),
        "scores": await js.open(scores, "synth-scores"),
        "edges": await js.open(_public(js, tree), "synth-tree"),
        "two": await js.open(two, "synth-two"),
    }
    await s.finish()
    return out


def _public(s: Any, values: list[int]) -> Any:
    """Public ints as a secure array (every share is the value: a degree-0 sharing)."""
    return s.secint.array(s.secint.field.array(np.array(values, dtype=object)))


async def _joined(s: Any, args: dict[str, Any]) -> tuple[Any, int]:
    """The joined one-hot rows as their own TableSession (same guard), and their count."""
    from dnode.node.engines.mpc.kernels.psi import owner_tokens
    from dnode.node.mpc.table import TableSession

    w = s.width - 2
    groups = [[(int(o), int(k)) for o, k in g] for g in args["groups"]]
    for k in range(2):  # every owner's rows (after its header) are one-hot where it holds
        if s.rows_per_owner[k] > 1 and groups[k]:
            await s.check_onehot(groups[k], [(k, s.blocks[k][1:, 2:])])
    toks = await owner_tokens(s)
    # an id an owner holds on several rows is dropped (from the join): then one row changed at
    # an owner adds or removes at most two joined rows, the sensitivity the spec declares (a
    # "first row wins" rule would let one changed row also rewrite another id's joined row)
    once = [{t for t, c in Counter(tk).items() if c == 1} for tk in toks[:2]]
    where_b = {tok: j for j, tok in enumerate(toks[1]) if tok in once[1]}
    ia: list[int] = []
    ib: list[int] = []
    for i, tok in enumerate(toks[0]):
        at = where_b.get(tok)
        if at is not None and tok in once[0]:
            ia.append(i + 1)  # + 1: after the header row
            ib.append(at + 1)
    n = len(ia)
    if n == 0:
        empty = s.secint.array(np.zeros((0, w), dtype=object))
        return TableSession(s.mpc, s.secint, [empty], w, s.guard, private=s.private), 0
    held = [np.zeros(w, dtype=object) for _ in range(2)]
    for k in range(2):
        for o, kk in groups[k]:
            held[k][o : o + kk] = 1
    a = s.blocks[0][np.array(ia, dtype=int), 2:]
    b = s.blocks[1][np.array(ib, dtype=int), 2:]
    joined = a * held[0] + b * held[1]  # public 0/1 masks: local
    return TableSession(s.mpc, s.secint, [joined], w, s.guard, private=s.private), n
