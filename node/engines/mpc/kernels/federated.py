"""Kernel of the federated steps ``ml.kmeans_step`` and ``ml.logreg_step`` (specs and what
they reveal: ``scheduler.programs.ml.kmeans_step`` / ``logreg_step``).

Every owner shares ONE row: statistics it computed in plaintext on its own rows for the
public model in the params (per-cluster sums and counts; a gradient and a Hessian).  Its
influence witness proves the spec's linear checks on that row (``ProgramSpec.influence_checks``,
``node.mpc.influence.Check``: e.g. every per-cluster sum lies within its count times the
column's range); they run, with the multiplication check, at the first opening, and a failure
aborts the session naming the owner.  The kernel adds the rows and opens only the total: the
cost depends on the number of statistics, not on the number of rows behind them.
"""

from __future__ import annotations

from typing import Any


async def run(s: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``s``: the session's :class:`dnode.node.mpc.table.TableSession`."""
    name = str(args.get("program", "federated step"))
    bad = [k for k, r in enumerate(s.rows_per_owner) if r != 1]
    if bad:
        await s.finish()
        got = [s.rows_per_owner[k] for k in bad]
        return {"error": f"{name}: data owner(s) {bad} shared {got} rows of statistics, not one"}
    total = s.blocks[0][0]
    for block in s.blocks[1:]:
        total = total + block[0]
    return {"sums": await s.open(total, "federated-sums")}
