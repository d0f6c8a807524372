"""Kernel of ``ml.kmeans`` (spec and what it reveals: scheduler.programs.ml.kmeans).

Centroids are public integers at the centroid scale; points are secret.  The score
``2 x.c - |c|^2`` is linear in x, so distances cost no product; the nearest centroid is a
tournament of checked comparisons carrying a secret one-hot row; the per-cluster sums are one
secure product ``onehot^T X``; only the sums and sizes are opened, once per iteration.
With ``dp`` (DPLloyd) they are opened only after discrete Laplace noise sampled inside the MPC
(:mod:`node.engines.mpc.noise`, every iteration's noise drawn in one batch up front).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dnode.node.engines.mpc import noise


async def argmax_onehot(s: Any, scores: Any, bits: int) -> Any:
    """Per row of ``scores`` (n, k): a secret one-hot (n, k) of its largest entry."""
    n, k = scores.shape
    mpc, secint = s.mpc, s.secint
    eye = np.array([[[int(i == j) for i in range(k)]] * n for j in range(k)], dtype=object)
    vals = scores.T.reshape(k, n, 1)
    a = mpc.np_concatenate((vals, secint.array(eye)), axis=2)  # (k, n, 1 + k)
    while (c := a.shape[0]) > 1:
        n0, h = c % 2, (c + 1) // 2
        a1, a2 = a[n0:h], a[h:]
        d = a1[:, :, 0] - a2[:, :, 0]  # a1 < a2: take a2 (ties keep a1)
        m = await s.where_negative(d, a1, a2, bits)
        a = mpc.np_concatenate((a[:1], m), axis=0) if n0 else m
    return a[0][:, 1:]


def sample_rows(n: int, size: int, seed: int) -> list[int] | None:
    """The public sample of ``size`` row indices out of ``n`` (sorted; every party draws the
    same from ``seed``), or None for all rows (``size`` 0 or at least ``n``)."""
    if size <= 0 or size >= n:
        return None
    rng = np.random.default_rng([seed, n, size])
    return sorted(int(i) for i in rng.choice(n, size, replace=False))


def _round_div(num: int, den: int) -> int:
    """num / den rounded to the nearest integer (halves away from zero)."""
    q, r = divmod(abs(num), den)
    q += 2 * r >= den
    return q if num >= 0 else -q


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    k, n, d = int(args["k"]), s.rows, s.width
    empty = [i for i, r in enumerate(s.rows_per_owner) if r == 0]
    error = None
    if empty:
        error = f"ml.kmeans: data owner(s) {empty} contributed no rows"
    elif n < k:
        error = f"ml.kmeans: k={k} clusters but only {n} row(s) of data"
    if error:
        await s.finish()
        return {"error": error}
    mult = [int(v) for v in args["mult"]]
    x = s.x
    if any(m != 1 for m in mult):
        x = x * np.array([mult] * n, dtype=object)
    # clamp every coordinate into its declared range (once): an out-of-range point moves a
    # centroid no further than a legal one
    cb = int(args["clamp_bits"])
    lo = np.array([args["lo"]] * n, dtype=object)
    hi = np.array([args["hi"]] * n, dtype=object)
    x = await s.where_negative(x - lo, x, s.secint.array(lo), cb)
    x = await s.where_negative(hi - x, x, s.secint.array(hi), cb)
    extra, bits, tol = int(args["extra"]), int(args["dist_bits"]), int(args["tol"])
    iterations = int(args["iterations"])
    # a public random sample of the rows for every iteration but the last (0: all rows); the
    # last one always runs over every row, so the sizes are those of all the data
    idx = sample_rows(n, int(args.get("sample", 0)), int(args.get("sample_seed", 0)))
    xs = x if idx is None else x[idx]
    cents = np.array([int(v) for v in args["init"]], dtype=object).reshape(k, d)
    sizes = [0] * k
    dp = args.get("dp")
    z = await noise.sample(s, dp) if dp is not None else {}
    box = [(int(a) * extra, int(b) * extra) for a, b in zip(args["lo"], args["hi"], strict=True)]
    done, full = 0, idx is None or iterations == 1
    for it in range(iterations):
        pts = x if full else xs
        m = pts.shape[0]
        norms = (cents * cents).sum(axis=1)
        scores = 2 * ((pts * extra) @ cents.T) - np.array([list(norms)] * m, dtype=object)
        onehot = await argmax_onehot(s, scores, bits)
        sums = s.cross(onehot, pts)  # (k, d), common scale
        count = onehot.sum(axis=0)
        flat = sums.reshape(-1)
        if dp is not None:  # DPLloyd: only the noisy sums and sizes are ever opened
            flat, count = flat + z[f"sums-{it}"], count + z[f"sizes-{it}"]
        opened = await s.reveal(s.mpc.np_concatenate((flat, count)), f"kmeans-{it}")
        sizes = opened[k * d :]
        new = cents.copy()
        for i in range(k):
            if sizes[i] > 0:
                for j in range(d):
                    v = _round_div(opened[i * d + j] * extra, sizes[i])
                    # a noisy centroid may leave the declared box: clamped (post-processing)
                    new[i, j] = min(max(v, box[j][0]), box[j][1]) if dp is not None else v
        shift = max(abs(int(v)) for v in (new - cents).reshape(-1))
        cents, done = new, it + 1
        if idx is None:
            if shift <= tol:
                break
        elif full:
            break  # the one pass over every row that ends a sampled run
        elif shift <= tol or it + 2 == iterations:
            full = True  # converged on the sample, or one iteration left: every row next
    return {
        "centroids": [int(v) for v in cents.reshape(-1)],
        "sizes": [max(0, int(v)) for v in sizes],  # a noisy size may be negative
        "iterations": done,
    }
