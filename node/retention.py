"""Deleting a task's secret shares once it settled: compromising t+1 disks later must not
reveal past inputs (issue 13, finding 6).

A node keeps an owner's shares (``shares`` table of ``node.db`` and ``shares-*.json`` in the
task dir) while it may need them: computing, retrying, restarting.  After its seat closed or
was abandoned AND the task is terminal on chain (finalized, refunded or overturned: nothing
can ask for a re-computation any more), the shares are deleted once ``window`` seconds have
passed (config ``share_retention``, default :data:`DEFAULT_RETENTION`; 0 deletes at the next
sweep).  SQLite overwrites deleted rows (``secure_delete``) and the WAL is checkpointed, so
the bytes do not linger in free pages.  Party job directories (0700, under the system temp
dir) are removed by the executor when the party exits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from dnode.node.state import NodeState

log = logging.getLogger("dnode.retention")

DEFAULT_RETENTION = 600.0  # seconds after settlement
SWEEP_INTERVAL = 60.0

__all__ = ["DEFAULT_RETENTION", "purge_task_files", "sweep_forever", "sweep_once"]


def purge_task_files(state_dir: Path, task_id: int, round: int) -> int:
    """Remove the ``shares-*.json`` copies of a task round; returns how many."""
    d = state_dir / (f"task-{task_id}-rerun" if round else f"task-{task_id}")
    n = 0
    for f in d.glob("shares-*.json"):
        f.unlink(missing_ok=True)
        n += 1
    return n


async def sweep_once(
    state: NodeState,
    state_dir: Path,
    window: float,
    is_settled: Callable[[int], Awaitable[bool]],
    now: float | None = None,
) -> list[tuple[int, int]]:
    """Purge every settled task round whose seat ended more than ``window`` s ago."""
    now = time.time() if now is None else now
    purged = []
    for task_id, rnd in state.settled_with_shares(now - window):
        try:
            if not await is_settled(task_id):
                continue
        except Exception as e:  # noqa: BLE001 - chain unreachable: try at the next sweep
            log.info("task %d: shares kept for now (%s)", task_id, e)
            continue
        rows = state.purge_shares(task_id, rnd)
        files = purge_task_files(state_dir, task_id, rnd)
        log.info("task %d round %d: deleted %d stored shares (%d files)", task_id, rnd, rows, files)
        purged.append((task_id, rnd))
    return purged


async def sweep_forever(
    state: NodeState,
    state_dir: Path,
    window: float,
    is_settled: Callable[[int], Awaitable[bool]],
    interval: float = SWEEP_INTERVAL,
) -> None:
    """Run :func:`sweep_once` every ``interval`` (at most ``window``) seconds."""
    while True:
        try:
            await sweep_once(state, state_dir, window, is_settled)
        except Exception:  # the sweeper must never take the node down
            log.exception("share retention sweep failed")
        await trio.sleep(max(1.0, min(interval, window)))
