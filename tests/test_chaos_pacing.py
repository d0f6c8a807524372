"""scripts/chaos.py's pacing: ``--concurrency`` bounds the tasks in flight (posted and not yet
reported or settled), with owner agents as in one-shot mode. Before, a worker with
``--owner-agents`` moved on right after posting: all tasks were posted within seconds and most
could never get a committee (20 tasks x 3 seats against 5 nodes x 4 seats).

The chain here is a scripted stand-in (statuses advance per poll): this checks the harness's
pacing only; the chaos run itself is ``scripts/chaos.py`` / ``pytest -m soak tests/test_chaos.py``.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import dnode
from dnode.contracts.client import TaskStatus
from tests.script_module import load_script

SCRIPT = Path(dnode.IMPORT_ROOT) / "scripts" / "chaos.py"


def _chaos() -> ModuleType:
    return load_script("chaos_script", SCRIPT)


class ScriptedCluster:
    """Posts get ids 1, 2, ...; each task reads OPEN, COMPUTING, then REPORTED (or stays
    OPEN past its report deadline when ``stuck``) over successive polls."""

    def __init__(self, workdir: Path, stuck: frozenset[int] = frozenset()) -> None:
        self.workdir = workdir
        self.mu = threading.Lock()
        self.next_id = 0
        self.polls: dict[int, int] = {}
        self.in_flight: set[int] = set()
        self.most_in_flight = 0
        self.stuck = stuck
        self.now = int(time.time())

    def post_mpc(self, requester: Any, owners: Any, **kw: Any) -> int:
        with self.mu:
            self.next_id += 1
            self.in_flight.add(self.next_id)
            self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
            return self.next_id

    def contribute_all(self, task_id: int, owners: Any, files: Any) -> dict[str, Any]:
        return {}

    def reader(self) -> Any:
        return self

    def block_timestamp(self) -> int:
        return self.now

    def task_info(self, task_id: int) -> Any:
        with self.mu:
            n = self.polls[task_id] = self.polls.get(task_id, 0) + 1
            status = [TaskStatus.OPEN, TaskStatus.COMPUTING, TaskStatus.REPORTED][min(n, 3) - 1]
            deadline = self.now + 240
            if task_id in self.stuck:
                status = TaskStatus.OPEN
                deadline = self.now - 100 if n >= 3 else deadline  # the deadline passes
            if n >= 3:  # reported, or past its deadline (the janitor cancels it)
                self.in_flight.discard(task_id)
            return SimpleNamespace(status=status, report_deadline=deadline)


@pytest.mark.parametrize("agents", [True, False], ids=["owner-agents", "one-shot"])
def test_concurrency_bounds_the_tasks_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agents: bool
) -> None:
    mod = _chaos()
    real_sleep = time.sleep
    monkeypatch.setattr(mod.time, "sleep", lambda s: real_sleep(0.002))
    args = _args(agents)
    chaos = mod.Chaos(args, tmp_path)
    chaos.agent_mean = 1
    cluster = ScriptedCluster(tmp_path, stuck=frozenset({3}))
    chaos.cluster = cluster
    with ThreadPoolExecutor(args.concurrency) as pool:  # as Chaos.run
        futs = [pool.submit(chaos._one_task, i, object(), {"a": object()}) for i in range(8)]
    for f in futs:
        assert f.exception() is None
    assert cluster.next_id == 8 and not chaos.post_errors
    assert cluster.most_in_flight <= args.concurrency
    assert all(cluster.polls[t] >= 3 for t in range(1, 9))  # each waited for its status


def _args(agents: bool) -> argparse.Namespace:
    return argparse.Namespace(
        seed=1, challenge_period=5, nodes=1, verbose=False, owner_agents=agents,
        seat_timeout=90, report_timeout=240, input_timeout=60, concurrency=2,
    )  # fmt: skip
