"""Federated ML as a chain of tasks: ``Client.kmeans`` / ``Client.logreg`` (``dnode ml kmeans
--federated``, ``dnode ml logreg --federated``).

Every iteration is ONE task of a step program (``ml.kmeans_step``, ``ml.logreg_step``) whose
params carry the previous task's attested result (the centroids, the weights): the owners
(their agents contribute on their own, as for any task naming them) compute their statistics
for that public model, the committee range-checks and adds them, and the next task starts
from its output.  Nothing here is program-specific beyond which output becomes which
argument (``_CHAINS``).  A step that is refunded (or not reported in time) ends the run with
one line naming the step and the task; the steps before it stay attested on-chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnode.cli.sdk.errors import SdkError

if TYPE_CHECKING:
    from dnode.cli.sdk.tasks import Result
    from dnode.scheduler.programs import Column, TaskParams


@dataclass
class FederatedRun:
    """A finished chain: the step program, every step's task id and output (exact decimal
    strings, row-major), and the last step's decoded result."""

    program: str
    task_ids: list[int] = field(default_factory=list)
    outputs: list[list[str]] = field(default_factory=list)
    result: Result | None = None
    converged: bool = False

    @property
    def values(self) -> list[str]:
        return self.outputs[-1] if self.outputs else []

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "program": self.program,
            "steps": len(self.task_ids),
            "task_ids": self.task_ids,
            "converged": self.converged,
            "values": self.values,
            "shape": list(r.shape) if r is not None else [],
            "labels": [list(x) for x in r.labels] if r is not None else [],
            "history": self.outputs,
        }


def exact(values: Sequence[Decimal]) -> list[str]:
    """A result's values as the shortest exact decimal strings (the next step's arguments)."""
    out = []
    for v in values:
        s = format(v.normalize(), "f") if v != 0 else "0"
        out.append(s)
    return out


def kmeans_next(
    out: list[str], args: Mapping[str, Any], params: TaskParams, tol: Fraction
) -> tuple[dict[str, Any], bool]:
    """The next step's args from a step's (k, d + 1) output; converged: no centroid moved more
    than ``tol`` in any column."""
    dims = len(params.columns)
    k = len(out) // (dims + 1)
    cents = [out[i * (dims + 1) + j] for i in range(k) for j in range(dims)]
    old = [Fraction(v) for v in args["centroids"]]
    moved = max(abs(Fraction(a) - b) for a, b in zip(cents, old, strict=True))
    return {**args, "centroids": cents}, moved <= tol


def logreg_next(
    out: list[str], args: Mapping[str, Any], params: TaskParams, tol: Fraction
) -> tuple[dict[str, Any], bool]:
    """The next step's args from a step's weights; converged: no weight moved more than tol."""
    old = [Fraction(v) for v in args.get("weights") or ["0"] * len(out)]
    moved = max(abs(Fraction(a) - b) for a, b in zip(out, old, strict=True))
    return {**args, "weights": list(out)}, moved <= tol


Next = Callable[[list[str], Mapping[str, Any], "TaskParams", Fraction],
               tuple[dict[str, Any], bool]]  # fmt: skip


def run_chain(
    client: Any,  # a dnode.cli.sdk.client.Client (not imported: it imports this module)
    program: str,
    next_args: Next,
    *,
    owners: Sequence[str],
    columns: Sequence[str | Column] = (),
    schema: str | Path | None = None,
    args: Mapping[str, Any],
    iterations: int,
    tol: Fraction = Fraction(0),
    reward: int | str = "0.3ether",
    committee: int = 3,
    seat_timeout: int = 120,
    report_timeout: int = 600,
    input_timeout: int = 120,
    max_rows: int = 1 << 16,
    min_owners: int | None = None,
    private_result: bool = False,
    bootstrap: Sequence[str] | None = None,
    on_step: Callable[[int, int, list[str]], None] | None = None,
) -> FederatedRun:
    """Post ``iterations`` steps of ``program`` one after another, each from the previous
    step's result; stop early once ``next_args`` says the model stopped moving."""
    if iterations < 1:
        raise SdkError(f"{program}: iterations must be at least 1")
    run = FederatedRun(program)
    cur = dict(args)
    for i in range(iterations):
        params = client.table_params(
            program, owners, columns=columns, schema=schema, args=cur,
            input_timeout=input_timeout, max_rows=max_rows, min_owners=min_owners,
            private_result=private_result,
        )  # fmt: skip
        task = client.post_params(
            params, reward=reward, committee=committee, seat_timeout=seat_timeout,
            report_timeout=report_timeout, bootstrap=bootstrap,
        )  # fmt: skip
        run.task_ids.append(task.id)
        try:
            res = task.result(wait=report_timeout + 60, progress=False)
        except SdkError as e:
            raise SdkError(f"{program}: step {i + 1} of {iterations} stopped: {e}") from None
        out = exact(res.decimal_values)
        run.outputs.append(out)
        run.result = res
        if on_step is not None:
            on_step(i + 1, task.id, out)
        cur, run.converged = next_args(out, cur, params, tol)
        if run.converged:
            break
    return run
