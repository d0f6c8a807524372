"""The seam between the chain and the policy: which of the owner's datasets a task uses,
and what the task offers it (:class:`TaskOffer`).

Today a task names its data owners (``TaskParams.owners``) and the columns it reads, not a
dataset: the agent uses the first of its datasets whose file has the task's columns, and
the offer carries no price or privacy cost (None). Once tasks name on-chain datasets, only
:func:`dataset_for` (match the task's dataset ids against ``Dataset.dataset_id``) and
:func:`build_offer` (read the dataset's price and the task's privacy cost for it from the
chain bindings) change; the policy and everything after it stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dnode.node.owner.config import Dataset
from dnode.node.owner.policy import TaskOffer
from dnode.scheduler.errors import SchedulerError
from dnode.scheduler.programs import TaskParams


def dataset_for(params: TaskParams, datasets: Sequence[Dataset]) -> tuple[Dataset | None, str]:
    """The dataset to contribute, or None and why none fits (the first file's error)."""
    from dnode.scheduler.programs.tables import read_table

    first = ""
    for ds in datasets:
        try:
            read_table(ds.file, params.columns)
            return ds, ""
        except SchedulerError as e:
            first = first or str(e)
    cols = ", ".join(c.name for c in params.columns)
    return None, f"no dataset has the task's columns ({cols}): {first}"


def build_offer(task: Any, params: TaskParams, dataset: Dataset) -> TaskOffer:
    """What ``task`` (a contracts.client.TaskInfo) offers ``dataset``.

    Chain side, to come: the price the task escrowed for ``dataset.dataset_id`` and the
    privacy cost it declared for it (both None until the bindings expose them)."""
    spec = params.spec
    return TaskOffer(
        task_id=int(task.task_id),
        program=params.program,
        program_id="0x" + spec.program_id.hex(),
        family=spec.family,
        reward=int(task.reward),
        requester=str(task.requester),
        dataset=dataset.name,
        price=None,
        privacy_cost=None,
    )
