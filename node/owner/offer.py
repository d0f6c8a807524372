"""The seam between the chain and the policy: which of the owner's datasets a task uses,
and what the task offers it (:class:`TaskOffer`).

A task over on-chain datasets (``dnode task post --dataset``) names them on-chain with the
price it escrowed and the privacy cost it charged for each: the agent serves the one of its
datasets the task names (``Dataset.dataset_id``) and the offer carries that price and cost.
A task that names no dataset names its data owners (``TaskParams.owners``) and the columns
it reads: the agent uses the first of its datasets whose file has them, and the offer has
no price or privacy cost (None; a policy asking for a price keeps it pending).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dnode.contracts.data_market import MICRO
from dnode.node.owner.config import Dataset
from dnode.node.owner.policy import TaskOffer
from dnode.scheduler.errors import SchedulerError
from dnode.scheduler.programs import TaskParams


def dataset_for(
    params: TaskParams, datasets: Sequence[Dataset], task: Any = None
) -> tuple[Dataset | None, str]:
    """The dataset to contribute, or None and why none fits.

    A task over on-chain datasets (``task.datasets``, from ``TaskDatasets``) is served only
    from the dataset it names and paid for; a task that names none is matched by the columns
    it reads (the first file that has them)."""
    from dnode.scheduler.programs.tables import read_table

    named = {e.dataset_id for e in getattr(task, "datasets", ()) or ()}
    if named:
        mine = [ds for ds in datasets if ds.dataset_id in named]
        if not mine:
            return None, "the task names none of this owner's datasets"
        ds = mine[0]
        try:
            read_table(ds.file, params.columns)
        except SchedulerError as e:
            return None, f"dataset {ds.dataset_id} ({ds.name}) cannot serve the task: {e}"
        return ds, ""
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
    """What ``task`` (a contracts.client.TaskInfo) offers ``dataset``: for a task over
    on-chain datasets, the price it escrowed for this one and the privacy cost it charged to
    its budget (ε or ρ); None for a task that names no dataset."""
    spec = params.spec
    entry = next(
        (e for e in getattr(task, "datasets", ()) or () if e.dataset_id == dataset.dataset_id),
        None,
    )
    return TaskOffer(
        task_id=int(task.task_id),
        program=params.program,
        program_id="0x" + spec.program_id.hex(),
        family=spec.family,
        reward=int(task.reward),
        requester=str(task.requester),
        dataset=dataset.name,
        price=None if entry is None or not dataset.dataset_id else int(entry.price),
        privacy_cost=None if entry is None or not dataset.dataset_id else entry.cost / MICRO,
    )
