"""Kernel of the PSI family (spec: scheduler.programs.psi.spec; token math: .psi.tokens).

1. open every owner's blinded points (two 128-bit halves per point; pseudorandom to a seat);
2. draw a shared key [k] and compute [k * rho_o] per owner (one checked product);
3. each seat computes its partial s_i * a_j of every point, the seats exchange the partials
   (raw bytes through the hardened transport) and every seat combines them into the tokens
   k * H(id) after the parity check in the exponent (a wrong partial aborts the session);
4. by mode: count the tokens every owner holds (cardinality); the requester's match bits
   (intersection; sealed to the requester); the provider's label shares at the matched rows
   (labelled PSI; selected by public index, never opened to the committee); the joined rows'
   column sums and the needed sums of products (join), opened after the checks.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from dnode.node.engines.mpc import noise
from dnode.scheduler.programs.psi import tokens as T


class PsiKernelError(Exception):
    """Inputs the kernel cannot turn into tokens (an owner's malformed header or points)."""


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    mode = args["mode"]
    toks = await owner_tokens(s)
    if mode == "cardinality":
        sets = [set(t) for t in toks]
        common = set.intersection(*sets) if sets else set()
        size = _public(s, [len(common)])
        if "dp" in args:  # the committee knows the size; the readers get it noisy only
            size = (await noise.add(s, {"count": size}, args["dp"]))["count"]
        out = {"count": await s.open(size, "count")}
    elif mode == "intersection":
        other = set(toks[1])
        bits = [int(x in other) for x in toks[0]]
        out = {"match": await s.open(_public(s, bits), "match") if bits else []}
    elif mode == "label":
        out = await _labels(s, toks)
    elif mode == "join":
        out = await _join(s, toks, args)
    else:
        raise PsiKernelError(f"unknown mode {mode!r}")
    await s.finish()
    return out


def _public(s: Any, values: list[int]) -> Any:
    """Public ints (1+) as a secure array: every share is the value (a degree-0 sharing)."""
    return s.secint.array(s.secint.field.array(np.array(values, dtype=object)))


async def owner_tokens(s: Any) -> list[list[bytes]]:
    """Every owner's tokens k * H(id), one per row after its header, in its file's order."""
    mpc = s.mpc
    m, t = len(mpc.parties), mpc.threshold
    n_owners = len(s.blocks)
    if any(n < 1 for n in s.rows_per_owner):
        raise PsiKernelError("an owner sent no header row")
    ids = [n - 1 for n in s.rows_per_owner]
    live = [k for k in range(n_owners) if ids[k]]
    # 1. the blinded points (public to the committee by design)
    halves: list[int] = []
    if live:
        pts = mpc.np_vstack([s.blocks[k][1:, 0:2] for k in live]).reshape(-1)
        halves = await s.open_public(pts, "psi-points")
    points: list[list[bytes]] = [[] for _ in range(n_owners)]
    pos = 0
    for k in live:
        for _ in range(ids[k]):
            try:
                points[k].append(T.join(halves[pos], halves[pos + 1]))
            except T.BadPoint:
                raise PsiKernelError(f"data owner {k} sent a malformed point") from None
            pos += 2
    # 2. [k * rho_o]: one checked product per owner
    key = s.random()
    rho = mpc.np_fromlist([s.blocks[k][0, 0] for k in range(n_owners)])
    kk = mpc.np_fromlist([key] * n_owners)
    mine = await s.shares_of(await s.product(rho, kk))
    # 3. partials, exchanged, combined with the parity check
    payload = bytearray()
    size = T.PARTIAL_BYTES
    for k in range(n_owners):
        try:
            payload += T.partials(points[k], mine[k] % T.ORDER)
        except T.BadPoint:
            raise PsiKernelError(f"data owner {k} sent a point outside the group") from None
    got = await s.exchange(bytes(payload), "psi-partials")
    total = sum(ids)
    if any(len(g) != size * total for g in got):
        from dnode.node.mpc.malicious import CheatingDetected

        bad = [i for i, g in enumerate(got) if len(g) != size * total]
        raise CheatingDetected("psi-partials", f"parties {bad} sent partials of the wrong size")
    try:
        flat = T.combine_all(got, t, total)
    except T.PartialMismatch as e:
        from dnode.node.mpc.malicious import CheatingDetected

        raise CheatingDetected("psi-partials", str(e)) from None
    out: list[list[bytes]] = []
    j = 0
    for k in range(n_owners):
        out.append(flat[j : j + ids[k]])
        j += ids[k]
    assert m == len(got)
    return out


async def _labels(s: Any, toks: list[list[bytes]]) -> dict[str, Any]:
    """Per requester row: the match bit and the provider's label shares at its matched row."""
    where: dict[bytes, int] = {}
    for i, tok in enumerate(toks[1]):  # a duplicated provider id: its first row
        where.setdefault(tok, i)
    w = s.width - 2
    bits = [int(x in where) for x in toks[0]]
    n = len(toks[0])
    if not n:
        return {"match": [], "label": []}
    prov = s.blocks[1]
    rows = [where.get(x, -1) for x in toks[0]]
    # the provider's label shares at the matched rows (row + 1: after its header), a public
    # index; an unmatched row gets the public 0
    idx = np.array([r + 1 if r >= 0 else 0 for r in rows], dtype=int)
    mask = np.array([[b] * w for b in bits], dtype=object)
    # a public 0/1 mask: local; a provider without ids: every label is the public 0
    labels = (prov[idx, 2:] * mask).reshape(-1) if prov.shape[0] > 1 else _public(s, [0] * n * w)
    return {"match": await s.open(_public(s, bits), "match"),
            "label": await s.open(labels, "label")}  # fmt: skip


async def _join(s: Any, toks: list[list[bytes]], args: dict[str, Any]) -> dict[str, Any]:
    """Align the two owners' rows by token (every matching pair: an inner join), then the
    column sums and the sums of products the spec asked for, over the joined rows only."""
    from dnode.node.mpc.table import TableSession

    mpc, secint = s.mpc, s.secint
    dp = args.get("dp")
    right: dict[bytes, list[int]] = defaultdict(list)
    for i, tok in enumerate(toks[1]):
        if dp is None or tok not in right:  # DP: one row per id and owner (its first)
            right[tok].append(i)
    ia: list[int] = []
    ib: list[int] = []
    seen: set[bytes] = set()
    for i, tok in enumerate(toks[0]):
        if dp is not None:
            if tok in seen:
                continue
            seen.add(tok)
        for j in right.get(tok, ()):
            ia.append(i + 1)  # + 1: after the header row
            ib.append(j + 1)
    n = len(ia)
    holder = [list(h) for h in args["holder"]]
    sums_at, pairs = list(args["sums"]), [tuple(p) for p in args["pairs"]]
    if dp is not None:
        return await _noisy_join(s, ia, ib, holder, sums_at, pairs, args)
    count = await s.open(_public(s, [n]), "count")
    if n == 0:
        return {"count": count, "sum": [0] * len(sums_at), "gram": [0] * len(pairs)}
    w = s.width - 2
    a = s.blocks[0][np.array(ia, dtype=int), 2:]
    b = s.blocks[1][np.array(ib, dtype=int), 2:]
    # each slot from the owner that holds it (the other's slot is ignored, whatever it holds)
    sel_a = np.array([int(c in holder[0]) for c in range(w)], dtype=object)
    sel_b = np.array([int(c in holder[1]) for c in range(w)], dtype=object)
    joined = a * sel_a + b * sel_b  # public 0/1 masks: local
    js = TableSession(mpc, secint, [joined], w, s.guard, private=s.private)
    out: dict[str, Any] = {"count": count}
    sums = js.sums()
    opened = [("sum", mpc.np_fromlist([sums[c] for c in sums_at]) if sums_at else None)]
    if pairs:
        g = js.gram()
        opened.append(("gram", mpc.np_fromlist([g[p, q] for p, q in pairs])))
    else:
        opened.append(("gram", None))
    for name, v in opened:
        out[name] = [] if v is None else await js.open(v, name)
    return out


async def _noisy_join(
    s: Any,
    ia: list[int],
    ib: list[int],
    holder: list[list[int]],
    sums_at: list[int],
    pairs: list[tuple[int, int]],
    args: dict[str, Any],
) -> dict[str, Any]:
    """Differential privacy over the (deduplicated) join: the summed columns of the joined
    rows clipped to their declared ranges inside the MPC, then the size, the sums and the
    sums of products the spec asked for, each plus discrete Laplace noise sampled inside the
    MPC (:mod:`node.engines.mpc.noise`); only the noisy values are opened. An empty join is
    noised too (its zeros are as secret as any size)."""
    from dnode.node.mpc.table import TableSession

    mpc = s.mpc
    n, k = len(ia), len(sums_at)
    values: dict[str, Any] = {"count": _public(s, [n])}
    if n and k:
        w = s.width - 2
        a = s.blocks[0][np.array(ia, dtype=int), 2:]
        b = s.blocks[1][np.array(ib, dtype=int), 2:]
        sel_a = np.array([int(c in holder[0]) for c in range(w)], dtype=object)
        sel_b = np.array([int(c in holder[1]) for c in range(w)], dtype=object)
        joined = (a * sel_a + b * sel_b)[:, np.array(sums_at, dtype=int)]  # (n, k) summed only
        clip = list(args["clip"])
        x = await noise.clip(s, joined, [lo for _, lo, _ in clip], [hi for _, _, hi in clip],
                             int(args["clip_bits"]))  # fmt: skip
        js = TableSession(mpc, s.secint, [x], k, s.guard, private=s.private)
        values["sum"] = x.sum(axis=0)
        if pairs:
            g = js.gram()
            at = {c: i for i, c in enumerate(sums_at)}
            values["gram"] = mpc.np_fromlist([g[at[p], at[q]] for p, q in pairs])
    else:  # nothing joined: the sums are public zeros, noised all the same
        if k:
            values["sum"] = _public(s, [0] * k)
        if pairs:
            values["gram"] = _public(s, [0] * len(pairs))
    noisy = await noise.add(s, values, args["dp"])
    out: dict[str, Any] = {"sum": [], "gram": []}
    for name, v in noisy.items():
        out[name] = await s.open(v, name)
    return out
