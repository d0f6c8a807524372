"""Waiting for a task's on-chain status with a spinner on stderr (``task`` and ``he``
commands); the waiting itself is the SDK's (:func:`dnode.cli.sdk.tasks.wait_for`)."""

from __future__ import annotations

from dnode.cli.context import Ctx
from dnode.cli.sdk.tasks import wait_for
from dnode.contracts.client import ChainClient, TaskStatus


def _wait_for(
    c: Ctx, chain: ChainClient, task_id: int, want: set[TaskStatus], timeout: float, what: str
) -> TaskStatus:
    with c.console.status(f"task {task_id}: {what}") as status:
        return wait_for(
            chain, task_id, want, timeout, what,
            lambda st: status.update(f"task {task_id}: {what} (now {st.name.lower()})"),
        )  # fmt: skip
