"""The compute node: a long-lived trio service that watches the chain, talks libp2p, runs MPC.

Structure: one nursery supervises the chain watcher, the gossip listener and one worker per
task in which this node holds a seat. The chain client is synchronous (web3 over JSON-RPC)
and runs in worker threads; MPyC parties run as child processes whose traffic goes through
authenticated libp2p tunnels, so only staked committee members can reach them.

This module is the wiring: handlers, supervision, status. A task's steps are the modules of
``node.task`` in flow order; the compute step goes through ``node.engines``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import trio

from dnode.contracts.client import TERMINAL_STATUSES, ChainClient, rpc_stats
from dnode.contracts.errors import ContractsError
from dnode.node.chainwatch import Batch, ChainFollower
from dnode.node.config import NodeConfig
from dnode.node.errors import ProtocolViolation
from dnode.node.metrics import Metrics, MetricsServer
from dnode.node.mpc.executor import Executor
from dnode.node.protocol import (
    PROTO_ANNOUNCE,
    PROTO_JOIN,
    PROTO_NOTICE,
    PROTO_PARAMS,
    PROTO_SHARES,
    PROTO_SIGNATURE,
    TOPIC_TASKS,
    Announcement,
    OwnerNotice,
)
from dnode.node.retention import sweep_forever
from dnode.node.state import NodeState
from dnode.node.task.announce import accept_params, on_announce, on_params_request
from dnode.node.task.attest import on_signature
from dnode.node.task.committee import accept_join, on_join_request
from dnode.node.task.context import NodeContext
from dnode.node.task.events import on_chain_event, on_orphaned
from dnode.node.task.inputs import on_contribution
from dnode.node.task.notices import accept_notice, on_owner_notice
from dnode.node.task.recover import recover
from dnode.node.task.state import TASK_STATES, TaskRuntime, task_state
from dnode.node.transport import Transport

__all__ = ["NodeConfig", "NodeDaemon", "TaskRuntime", "node_metrics"]

log = logging.getLogger("dnode.node")
T = TypeVar("T")

STATUS_EVERY = 5.0  # seconds between refreshes of account figures and state/node.json
START_LOOKBACK = 1000  # blocks of history a starting node replays


class NodeDaemon(NodeContext):
    def __init__(
        self,
        cfg: NodeConfig,
        chain: ChainClient,
        transport: Transport,
        executor: Executor | None = None,
        state: NodeState | None = None,
    ) -> None:
        super().__init__(cfg, chain, transport, executor, state, node_metrics())
        self.follower: ChainFollower | None = None
        self.metrics_server: MetricsServer | None = None
        self.account_figures: dict[str, int] = {}
        self.last_errors: deque[dict[str, Any]] = deque(maxlen=10)
        self._error_handler = _RecentErrors(self.last_errors)

    def register_handlers(self) -> None:
        """Each peer protocol goes to its task step (node.task)."""
        self.host.set_handler(PROTO_ANNOUNCE, partial(on_announce, self))
        self.host.set_handler(PROTO_PARAMS, partial(on_params_request, self))
        self.host.set_handler(PROTO_SHARES, partial(on_contribution, self))
        self.host.set_handler(PROTO_SIGNATURE, partial(on_signature, self))
        self.host.set_handler(PROTO_JOIN, partial(on_join_request, self))
        self.host.set_handler(PROTO_NOTICE, partial(on_owner_notice, self))
        self.he.serve()  # /dnode/blob/1.0.0: HE contexts, ciphertexts and results

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        info = await self.call(self.chain.node_info, self.address)
        if info.peer_id != self.host.peer_id:
            log.warning(
                "this node is not registered with peer id %s; run `dnode stake` to join committees",
                self.host.peer_id,
            )
        self.register_handlers()
        logging.getLogger("dnode").addHandler(self._error_handler)
        if self.cfg.metrics_port is not None:
            token = trio.lowlevel.current_trio_token()

            def on_trio(fn: Callable[[], T]) -> Callable[[], T]:
                # the HTTP thread reads daemon state on the trio thread, never concurrently
                return lambda: trio.from_thread.run_sync(fn, trio_token=token)

            self.metrics.on_collect(on_trio(self._collect_metrics))
            self.metrics_server = MetricsServer(
                self.metrics, on_trio(self.status), self.cfg.metrics_port
            ).start()
        try:
            self._write_status()
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                await recover(self)
                nursery.start_soon(self._watch_chain)
                nursery.start_soon(self.listen_gossip)
                nursery.start_soon(self._refresh_status)
                nursery.start_soon(
                    sweep_forever,
                    self.state,
                    self.cfg.state_dir,
                    self.cfg.share_retention,
                    self._settled,
                )
                log.info(
                    "node %s serving as peer %s on %s",
                    self.address,
                    self.host.peer_id,
                    self.host.addrs,
                )
                task_status.started()
        finally:
            logging.getLogger("dnode").removeHandler(self._error_handler)
            if self.metrics_server is not None:
                self.metrics_server.stop()
            close = getattr(self.executor, "close", None)
            if close is not None:  # the MPC parties' fork server (its parties were killed)
                close()

    async def _settled(self, task_id: int) -> bool:
        """Terminal on chain: its shares may go (see node.retention)."""
        return await self.call(self.chain.task_status, task_id) in TERMINAL_STATUSES

    @property
    def metrics_url(self) -> str | None:
        return self.metrics_server.url if self.metrics_server else None

    def tasks_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(TASK_STATES, 0)
        for rt in [*self.tasks.values(), *self.reruns.values()]:
            counts[task_state(rt)] += 1
        return counts

    def status(self) -> dict[str, Any]:
        """What ``dnode status`` shows (also written to state/node.json)."""
        f = self.follower
        return {
            "address": self.address,
            "peer_id": self.host.peer_id,
            "addrs": self.host.addrs,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "pid": os.getpid(),
            "metrics": self.metrics_url,
            "head_block": f.head if f else None,
            "confirmed_block": f.confirmed if f else None,
            "confirmations": self.cfg.confirmations,
            "peers": len(self.host.connected_peers()),
            "tasks": self.tasks_by_state(),
            **self.account_figures,
            "rpc": _rpc_summary(self.chain),
            "last_errors": list(self.last_errors),
            "updated_at": int(time.time()),
        }

    def _write_status(self) -> None:
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.cfg.state_dir / "node.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), indent=1, default=str))
        tmp.replace(path)

    async def _refresh_status(self) -> None:
        """Account figures for metrics and status, and state/node.json, every few seconds."""
        while True:
            try:
                info = await self.call(self.chain.node_info, self.address)
                credits = await self.call(self.chain.credits, self.address)
                balance = await self.call(self.chain.balance_of, self.address)
                self.account_figures = {
                    "stake_wei": info.stake,
                    "locked_wei": info.locked,
                    "credits_wei": credits,
                    "balance_wei": balance,
                }
            except ContractsError as e:
                log.warning("cannot refresh account figures: %s", e)
            self._write_status()
            await trio.sleep(STATUS_EVERY)

    def _collect_metrics(self) -> None:
        """Refresh the gauges that are read from state rather than counted (per scrape)."""
        m = self.metrics
        m.replace("tasks", {k: float(v) for k, v in self.tasks_by_state().items()}, "state")
        m.set("peers", len(self.host.connected_peers()))
        f = self.follower
        if f is not None:
            m.set("head_block", f.head)
            m.set("confirmed_block", f.confirmed)
            m.set("reorgs_total", f.reorgs)
            m.set("orphaned_events_total", f.orphaned_total)
        for key, name in (
            ("stake_wei", "stake_wei"),
            ("locked_wei", "locked_stake_wei"),
            ("credits_wei", "credits_wei"),
            ("balance_wei", "balance_wei"),
        ):
            if key in self.account_figures:
                m.set(name, self.account_figures[key])
        stats = rpc_stats(self.chain.w3)
        if stats is not None:
            m.set("rpc_requests_total", stats.requests)
            m.set("rpc_retries_total", stats.retries)
            m.set("rpc_failovers_total", stats.failovers)
            m.set("rpc_exhausted_total", stats.exhausted)
            m.replace("rpc_errors_total", {k: float(v) for k, v in stats.errors.items()}, "kind")

    async def _watch_chain(self) -> None:
        """Act on the contract's events once ``confirmations`` blocks deep (see chainwatch)."""
        backoff = self.cfg.poll_interval
        while True:
            try:
                if self.follower is None:
                    head = await self.call(self.chain.latest_block)
                    start = max(self.chain.deployment.deploy_block, head - START_LOOKBACK)
                    self.follower = ChainFollower(self.chain, start, self.cfg.confirmations)
                batch = await self.call(self.follower.poll)
                backoff = self.cfg.poll_interval
            except ContractsError as e:
                backoff = min(backoff * 2, 10.0)
                self.metrics.inc("chain_poll_errors_total")
                log.warning("chain poll failed (%s); retrying in %.1f s", e, backoff)
                await trio.sleep(backoff)
                continue
            await self._handle_batch(batch)
            await trio.sleep(backoff)

    async def _handle_batch(self, batch: Batch) -> None:
        if batch.reorg is not None:
            log.warning(
                "chain reorg %d deep below block %d: re-read from block %d",
                batch.reorg.depth,
                batch.reorg.processed_to,
                batch.reorg.fork_block + 1,
            )
        for ev in batch.orphaned:
            on_orphaned(self, ev)
        for ev in batch.events:
            try:
                await on_chain_event(self, ev)
            except ContractsError as e:
                log.warning("event %s not handled: %s", ev.name, e)

    async def listen_gossip(self) -> None:
        async for peer, data in self.host.subscribe(TOPIC_TASKS):
            try:
                if b'"kind":"join"' in data:
                    await accept_join(self, peer, data)
                    continue
                if b'"kind":"owner-notice"' in data:
                    accept_notice(self, peer, OwnerNotice.parse(peer, data))
                    continue
                ann = Announcement.parse(peer, data)
                if self.rt(ann.task_id).params is None:
                    await accept_params(self, ann.task_id, ann.params, peer, "gossip")
            except (ProtocolViolation, ContractsError) as e:
                log.warning("gossip from %s dropped: %s", peer, e)
            except Exception as e:  # a bug must not stop the gossip listener
                log.error("gossip from %s not handled", peer, exc_info=e)


def node_metrics() -> Metrics:
    """Every metric a node exports (names are documented in docs/operations.md)."""
    m = Metrics()
    m.gauge("tasks", "Tasks this node knows, by state of its runtime.")
    m.histogram("mpc_seconds", "Duration of this node's MPC party runs.")
    m.histogram("he_seconds", "Duration of this node's HE evaluations.")
    m.counter("task_failures_total", "Tasks that failed on this node.")
    m.gauge("peers", "Connected libp2p peers.")
    m.gauge("stake_wei", "Stake bonded in the registry.")
    m.gauge("locked_stake_wei", "Stake locked as seat collateral.")
    m.gauge("credits_wei", "Rewards credited and not yet withdrawn.")
    m.gauge("balance_wei", "The node account's ETH balance (pays gas).")
    m.gauge("head_block", "Chain head seen at the last poll.")
    m.gauge("confirmed_block", "Newest block whose events were acted on.")
    m.counter("reorgs_total", "Reorgs detected below the confirmation depth.")
    m.counter("orphaned_events_total", "Acted-on events that a reorg removed.")
    m.counter("chain_poll_errors_total", "Chain polls that failed after RPC retries.")
    m.counter("rpc_requests_total", "JSON-RPC calls made (each may take several attempts).")
    m.counter("rpc_retries_total", "JSON-RPC attempts retried after a transient error.")
    m.counter("rpc_failovers_total", "Switches to the next RPC endpoint.")
    m.counter("rpc_exhausted_total", "JSON-RPC calls that failed on every attempt.")
    m.counter("rpc_errors_total", "Transient JSON-RPC errors, by kind.")
    return m


def _rpc_summary(chain: ChainClient) -> dict[str, Any]:
    stats = rpc_stats(chain.w3)
    provider = chain.w3.provider
    endpoint = getattr(provider, "active_endpoint", getattr(provider, "endpoint_uri", None))
    if stats is None:
        return {"endpoint": str(endpoint)}
    return {
        "endpoint": str(endpoint),
        "requests": stats.requests,
        "retries": stats.retries,
        "failovers": stats.failovers,
        "errors": dict(stats.errors),
    }


class _RecentErrors(logging.Handler):
    """Keeps the last warnings and errors for ``dnode status``."""

    def __init__(self, sink: deque[dict[str, Any]]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(
            {"at": int(record.created), "level": record.levelname, "message": record.getMessage()}
        )
