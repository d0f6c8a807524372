"""What every task step uses: the chain, the transport, the state db, and the task runtimes.

``NodeDaemon`` is a ``NodeContext`` that also supervises; the steps take the context as their
first argument, so they can run against in-memory fakes of the chain and transport.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from dnode.contracts.client import ChainClient
from dnode.contracts.outbox import TxOutbox
from dnode.node.config import NodeConfig
from dnode.node.he_worker import HeWorker
from dnode.node.metrics import Metrics
from dnode.node.mpc.executor import Executor, SubprocessExecutor, sweep_stale_jobs
from dnode.node.protocol import OwnerNotice
from dnode.node.state import NodeState, open_state, write_private
from dnode.node.task.state import TaskRuntime
from dnode.node.transport import Transport

log = logging.getLogger("dnode.node")

T = TypeVar("T")


class NodeContext:
    def __init__(
        self,
        cfg: NodeConfig,
        chain: ChainClient,
        transport: Transport,
        executor: Executor | None = None,
        state: NodeState | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.chain = chain
        # crash-safe memory (seats, shares, results, signatures) and the tx outbox, one file
        self.state = state or open_state(cfg.state_dir)
        self.outbox = chain.outbox if isinstance(chain.outbox, TxOutbox) else None
        if chain.outbox is None:
            self.outbox = TxOutbox(self.state.path, stuck_after=cfg.tx_stuck_after)
            chain.outbox = self.outbox
        self.host = transport
        if executor is None:
            jobs = cfg.state_dir / "mpc-jobs"
            swept = sweep_stale_jobs(jobs)  # left by a killed predecessor: shares at rest
            if swept:
                log.info("removed %d MPC job dir(s) a previous run left behind", swept)
            executor = SubprocessExecutor(workroot=jobs)
            executor.prestart()  # the MPC parties' fork server imports MPyC meanwhile
        self.executor = executor
        self.address = cfg.account.address
        self.tasks: dict[int, TaskRuntime] = {}  # round 0
        self.reruns: dict[int, TaskRuntime] = {}  # round 1: re-execution of a disputed task
        # data owners' signed decisions per task, newest per owner (node.task.notices)
        self.owner_notices: dict[int, dict[str, OwnerNotice]] = {}
        # peers that answered that they do not serve join intents (data owners' agents):
        # not asked again, so libp2p does not log a failed stream per intent and agent
        self.not_joiners: set[str] = set()
        self._tx_lock = trio.Lock()
        self.nursery: trio.Nursery | None = None
        self.chain_id = chain.deployment.chain_id
        self.contract = chain.deployment.address
        self.he = HeWorker(
            transport, cfg.state_dir, self.tasks.get, lambda: list(self.tasks.values())
        )
        self.metrics = metrics or Metrics()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking chain call in a thread so the trio loop keeps serving peers.

        On cancellation (task closed, SIGTERM) the thread is abandoned rather than awaited: a
        hanging endpoint may take attempts x rpc_timeout to give up, and shutdown must not."""
        run = trio.to_thread.run_sync  # (a stale trio stub lacks abandon_on_cancel)
        return await run(partial(fn, *args), abandon_on_cancel=True)  # type: ignore[call-arg]

    async def tx(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._tx_lock:  # one nonce sequence per account
            return await self.call(fn, *args)

    def rt(self, task_id: int, round: int = 0) -> TaskRuntime:
        table = self.reruns if round else self.tasks
        rt = table.get(task_id)
        if rt is None:
            rt = table[task_id] = TaskRuntime(task_id, round)
        return rt

    def known(self, task_id: int, round: int = 0) -> TaskRuntime | None:
        return (self.reruns if round else self.tasks).get(task_id)

    def task_dir(self, task_id: int, round: int = 0) -> Path:
        d = self.cfg.state_dir / (f"task-{task_id}-rerun" if round else f"task-{task_id}")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save(self, task_id: int, name: str, obj: Any, round: int = 0) -> None:
        write_private(
            self.task_dir(task_id, round) / name, json.dumps(obj, indent=1, sort_keys=True)
        )

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(fn, *args)

    async def chain_now(self) -> int:
        """The timestamp the next block will carry: chains never go back, and may run ahead of
        the wall clock (a devnet stamps each block at least one second after its parent)."""
        latest = await self.call(self.chain.block_timestamp)
        return max(int(time.time()), latest + 1)
