"""Kernel of the federated steps ``ml.kmeans_step`` and ``ml.logreg_step`` (specs and what
they reveal: ``scheduler.programs.ml.kmeans_step`` / ``logreg_step``).

Every owner shares ONE row: statistics it computed in plaintext on its own rows for the
public model in the params (per-cluster sums and counts; a gradient and a Hessian).  The spec
lists linear checks ``sum_t coef_t row[index_t] + constant >= 0`` that an honest owner's row
passes; here each owner's checked quantities are proven non-negative by checked bit
decompositions (``TableSession.check_nonnegative``: a failure aborts the session naming the
owner), the rows are added, and only the total is opened.  The cost depends on the number of
statistics, not on the number of rows behind them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _terms(checks: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """(indices (m, t), coefficients (m, t), constants (m,), uppers): the checks padded to t
    terms (index -1 is the constant term)."""
    t = max((sum(int(a) >= 0 for a, _ in terms) for terms, _ in checks), default=1)
    idx = np.zeros((len(checks), max(t, 1)), dtype=np.int64)
    coef = np.zeros((len(checks), max(t, 1)), dtype=object)
    const = np.zeros(len(checks), dtype=object)
    for i, (terms, _) in enumerate(checks):
        j = 0
        for a, c in terms:
            if int(a) < 0:
                const[i] += int(c)
            else:
                idx[i, j], coef[i, j] = int(a), int(c)
                j += 1
    return idx, coef, const, [int(u) for _, u in checks]


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    name = str(args.get("program", "federated step"))
    bad = [k for k, r in enumerate(s.rows_per_owner) if r != 1]
    if bad:
        await s.finish()
        got = [s.rows_per_owner[k] for k in bad]
        return {"error": f"{name}: data owner(s) {bad} shared {got} rows of statistics, not one"}
    checks = args.get("checks") or []
    if checks:
        idx, coef, const, uppers = _terms(checks)
        bits = max(uppers).bit_length() or 1
        for k, block in enumerate(s.blocks):
            row = block[0]
            q = row[idx[:, 0]] * coef[:, 0] + const
            for j in range(1, idx.shape[1]):
                q = q + row[idx[:, j]] * coef[:, j]
            await s.check_nonnegative(q, bits, k, "its statistics do not come from legal rows")
    total = s.blocks[0][0]
    for block in s.blocks[1:]:
        total = total + block[0]
    return {"sums": await s.open(total, "federated-sums")}
