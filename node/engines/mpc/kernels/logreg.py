"""Kernel of ``ml.logreg`` (spec and what it reveals: scheduler.programs.ml.logreg).

Weights are public between iterations, so every score ``z = X a + c`` is a local linear
combination of the secret rows.  The sigmoid is the piecewise-linear interpolation of the
logistic function at the knots -5, -2, 2, 5 (0 below -5, 1 above 5):
``f(z) = sum_j c_j relu(z - k_j)`` with ``relu(z - k_j) = [z >= k_j] (z - k_j)``, i.e. one checked
comparison and one product per knot and row (all knots in one comparator call), and its
derivative ``f'(z) = sum_j c_j [z >= k_j]`` comes from the same bits.  Each Newton iteration
opens the gradient ``X^T (f(z) - y)`` and the Hessian ``X^T diag(f'(z)) X`` (with the
intercept's row and column); the public side solves the Newton step on standardised features
in floating point, identically on every party. With ``dp``: the features are clipped in the
MPC, and the scaling statistics, gradients and Hessians are opened only with discrete Laplace
noise sampled inside the MPC (:mod:`node.engines.mpc.noise`; all of it drawn up front).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dnode.node.engines.mpc import noise
from dnode.scheduler.programs.ml.logreg import KNOTS, standardise


def _slopes() -> list[float]:
    """c_j: the change of slope of the interpolant at knot j."""
    v = [0.0, *(1 / (1 + math.exp(-k)) for k in KNOTS[1:-1]), 1.0]
    s = [(v[i + 1] - v[i]) / (KNOTS[i + 1] - KNOTS[i]) for i in range(len(KNOTS) - 1)]
    return [b - a for a, b in zip([0.0, *s], [*s, 0.0], strict=True)]


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    n, w = s.rows, s.width
    d = w - 1
    empty = [i for i, r in enumerate(s.rows_per_owner) if r == 0]
    if empty or n < 2:
        await s.finish()
        why = f"data owner(s) {empty} contributed no rows" if empty else f"only {n} row(s)"
        return {"error": f"ml.logreg: {why}"}
    mpc, sec = s.mpc, s.secint
    scales = [int(v) for v in args["scales"]]
    q = 1 << int(args["weight_bits"])
    m_scale = 1 << int(args["slope_bits"])
    x = s.x[:, :d]
    y = s.x[:, d]
    dp = args.get("dp")
    z_dp: dict[str, Any] = {}
    if dp is not None:  # DP: features clipped to the declared ranges, all noise drawn now
        c = args["clip"]
        x = await noise.clip(s, x, c["lo"], c["hi"], int(c["bits"]))
        z_dp = await noise.sample(s, dp)
        sq = s.mul(x, x).sum(axis=0)
        scaled = mpc.np_concatenate((x.sum(axis=0) + z_dp["scale-sum"], sq + z_dp["scale-sumsq"]))
        st = await s.reveal(scaled, "logreg-scaling")
        stats = [*st[:d], 0, *st[d:], 0]  # the layout below: w sums, then w sums of squares
    else:
        # 1. scaling from secure statistics (opened to the committee)
        stats = await s.reveal(mpc.np_concatenate((s.sums(), s.sumsq())), "logreg-scaling")
    mu, sd = standardise(stats[:d], stats[w : w + d], scales[:d], n)
    # 2. the label clamped to {0, 1}: an owner's label of 7 counts as 1, -3 as 0
    yb = max(3, (2 * int(args["bounds"][d]) + 2).bit_length() + 1)
    y = await s.where_negative(y, y, sec.array(np.zeros(n, dtype=object)), yb)
    y = await s.where_negative(1 - y, y, sec.array(np.ones(n, dtype=object)), yb)
    # standardised x~ = T [x; 1] with x = X / 10**scale (T maps raw sums to standardised ones)
    unit = np.array([10.0**sc for sc in scales[:d]])
    tm = np.zeros((d + 1, d + 1))
    for j in range(d):
        tm[j, j] = 1 / (sd[j] * unit[j])
        tm[j, d] = -mu[j] / sd[j]
    tm[d, d] = 1.0
    reg = np.full(d + 1, 1 / float(args["C"]))
    reg[d] = 0.0
    knots_q = [int(k * q) for k in KNOTS]
    cs = [round(c * m_scale) for c in _slopes()]
    bounds = [int(v) for v in args["bounds"][:d]]
    max_bits = int(args["max_cmp_bits"])
    beta = np.zeros(d + 1)  # weights on standardised features, intercept last
    kk = len(KNOTS)
    for it in range(int(args["iterations"])):
        raw = tm.T @ beta  # z = raw[:d] . X + raw[d]
        a = [round(v) for v in raw[:d] * q]
        c0 = round(raw[d] * q)
        bound = sum(abs(ai) * bi for ai, bi in zip(a, bounds, strict=True)) + abs(c0)
        bits = (bound + max(map(abs, knots_q))).bit_length() + 2
        if bits > max_bits:
            await s.finish()
            return {"error": f"ml.logreg: the weights diverged at iteration {it}"}
        z = x @ np.array(a, dtype=object) + c0  # (n,), scale q
        diffs = mpc.np_concatenate([z - k for k in knots_q])  # (kk n,)
        ge = 1 - await s.negative(diffs, bits)  # [z >= k_j], knot-major
        relu = s.mul(ge, diffs)
        f = relu[0:n] * cs[0]
        deriv = ge[0:n] * cs[0]
        for j in range(1, kk):
            f = f + relu[j * n : (j + 1) * n] * cs[j]
            deriv = deriv + ge[j * n : (j + 1) * n] * cs[j]
        err = f - y * (q * m_scale)  # scale q m
        dx = s.mul(mpc.np_concatenate([deriv.reshape(n, 1)] * d, axis=1), x)  # (n, d)
        g = s.cross(err.reshape(n, 1), x).reshape(d)
        h = s.cross(dx, x).reshape(d * d)
        esum = err.reshape(1, n).sum(axis=1)
        hrest = mpc.np_concatenate((dx.sum(axis=0), deriv.reshape(1, n).sum(axis=1)))
        if dp is not None:  # noisy gradient (with the residual sum) and Hessian
            g, esum = g + z_dp[f"grad-x-{it}"], esum + z_dp[f"grad-1-{it}"]
            h = h + z_dp[f"hess-xx-{it}"]
            hrest = hrest + mpc.np_concatenate((z_dp[f"hess-x-{it}"], z_dp[f"hess-1-{it}"]))
        sums = mpc.np_concatenate((esum, hrest))
        opened = await s.reveal(mpc.np_concatenate((g, h, sums)), f"logreg-{it}")
        g_raw = np.array([float(v) for v in [*opened[:d], opened[d + d * d]]]) / (q * m_scale)
        hd = np.array([float(v) for v in opened[d : d + d * d]]).reshape(d, d)
        hx = np.array([float(v) for v in opened[d + d * d + 1 : d + d * d + 1 + d]])
        h_raw = np.zeros((d + 1, d + 1))
        h_raw[:d, :d] = hd
        h_raw[:d, d] = h_raw[d, :d] = hx
        h_raw[d, d] = float(opened[-1])
        h_raw /= m_scale
        grad = tm @ g_raw + reg * beta
        data = tm @ h_raw @ tm.T
        if dp is not None:  # a noisy Hessian: symmetrised, eigenvalues floored (post-processing)
            data = (data + data.T) / 2
            lam, vec = np.linalg.eigh(data)
            data = (vec * np.maximum(lam, 1e-3 * n)) @ vec.T
        hess = data + np.diag(reg) + 1e-9 * np.eye(d + 1)
        beta = beta - np.linalg.solve(hess, grad)
    orig = beta[:d] / np.array(sd)
    model = [round(v * q) for v in orig] + [round((beta[d] - float(np.dot(orig, mu))) * q)]
    out = await s.open(sec.array(np.array(model, dtype=object)), "model")
    return {"model": out}
