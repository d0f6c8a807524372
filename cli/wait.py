"""Waiting for a task's on-chain status (shared by ``task`` and ``he`` commands)."""

from __future__ import annotations

import time

from dnode.cli.context import CliError, Ctx
from dnode.contracts.client import TERMINAL_STATUSES, ChainClient, TaskStatus

TERMINAL = set(TERMINAL_STATUSES)


def _wait_for(
    c: Ctx, chain: ChainClient, task_id: int, want: set[TaskStatus], timeout: float, what: str
) -> TaskStatus:
    deadline = time.monotonic() + timeout
    with c.console.status(f"task {task_id}: {what}") as status:
        while True:
            st = chain.task_info(task_id).status
            status.update(f"task {task_id}: {what} (now {st.name.lower()})")
            if st in want or st in TERMINAL:
                return st
            if time.monotonic() > deadline:
                raise CliError(
                    f"task {task_id}: gave up after {timeout:.0f} s waiting ({what}); "
                    f"status is {st.name.lower()}"
                )
            time.sleep(0.5)
