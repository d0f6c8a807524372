"""Kernel of ``ml.infer`` (spec and what it reveals: scheduler.programs.ml.infer): the model
is one owner's secret-shared row; it is range-checked and every owner's influence checks run
before the rows meet the model; each score is a secret x secret inner product at a common
integer scale (exact); one checked comparison per row gives its class (multinomial: k - 1
comparisons, a running argmax); only the classes are opened (or sealed to the requester)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dnode.node.mpc.malicious import CheatingDetected


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    d, k, v = int(args["features"]), int(args["model_owner"]), int(args["vectors"])
    if s.rows_per_owner[k] != 1:  # public: the share count (an honest owner sends one row)
        raise CheatingDetected(
            "model", f"the model owner shared {s.rows_per_owner[k]} rows, not one (the model)", k
        )
    mb = int(args["model_bound"])
    model = s.blocks[k][0, d:]  # (v (d + 1),): per weight vector W_1 .. W_d, B (shares)
    # 1. the model within its declared bounds, before anything depends on it (a huge
    #    coefficient would make the comparisons' range checks abort depending on the rows)
    await s.check_range(model, -mb, mb, k, "a model value (coefficient or intercept)")
    # 2. every owner's influence checks (each row value within sqrt(n_k) times its bound)
    await s.finish()
    data = [s.blocks[j][:, :d] for j, n in enumerate(s.rows_per_owner) if j != k and n]
    if not data:
        return {"classes": []}
    x = s.mpc.np_vstack(data) if len(data) > 1 else data[0]  # (n, d)
    n = int(x.shape[0])
    mult = np.array([int(m) for m in args["multipliers"]], dtype=object)
    xm = x * mult  # every column at the common scale S (public factors: local)
    wb = model.reshape(v, d + 1)
    bm = int(args["intercept_multiplier"])
    z = s.matmul(wb[:, :d], xm.T)  # (v, n): secret x secret, one inner product per score
    bits = int(args["cmp_bits"])
    if v == 1:
        cls = await s.negative(-(z.reshape(-1) + wb[0, d] * bm), bits)  # [z > 0]
        return {"classes": await s.open(cls, "classes")}
    # multinomial: a running argmax over the classes (the first maximum wins, as np.argmax)
    best = z[0] + wb[0, d] * bm
    arg = s.secint.array(np.zeros(n, dtype=object))
    for j in range(1, v):
        zj = z[j] + wb[j, d] * bm
        lt = await s.negative(best - zj, bits)  # [best < z_j]
        best = best + s.mul(lt, zj - best)
        arg = arg + s.mul(lt, j - arg)
    return {"classes": await s.open(arg, "classes")}
