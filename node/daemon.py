"""The compute node: a long-lived trio service that watches the chain, talks libp2p, runs MPC.

Structure: one nursery supervises the chain watcher, the gossip listener and one worker per
task in which this node holds a seat. The chain client is synchronous (web3 over JSON-RPC)
and runs in worker threads; MPyC parties run as child processes whose traffic goes through
authenticated libp2p tunnels, so only staked committee members can reach them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import trio
from eth_account.signers.local import LocalAccount

from contracts.client import TERMINAL_STATUSES, ChainClient, ChainEvent, TaskStatus, rpc_stats
from contracts.errors import ContractsError, TransactionReverted
from contracts.outbox import TxOutbox
from node.chainwatch import DEFAULT_CONFIRMATIONS, Batch, ChainFollower
from node.errors import DoubleSignRefused, MpcError, NodeError, ProtocolViolation
from node.he_worker import HeWorker, is_he
from node.metrics import Metrics, MetricsServer
from node.mpc.executor import Executor, MpcJob, SubprocessExecutor, free_port
from node.mpc.sharing import field_modulus
from node.protocol import (
    PROTO_ANNOUNCE,
    PROTO_JOIN,
    PROTO_PARAMS,
    PROTO_SHARES,
    PROTO_SIGNATURE,
    TOPIC_TASKS,
    Announcement,
    Contribution,
    JoinIntent,
    SignatureMessage,
    dumps,
    error,
    loads,
    ok,
)
from node.state import OPEN_SEAT_STATES, HeldSeat, NodeState, open_state
from node.transport import Transport
from node.tunnel import tunnel_forwarders
from oracle.attestation import sign_join, sign_report
from oracle.encoding import AggregateResult
from oracle.errors import OracleError
from oracle.reporter import SignatureSet, reporter_rank
from scheduler.candidates import Candidates, candidates_for
from scheduler.eligibility import NodeView, should_claim
from scheduler.errors import SchedulerError
from scheduler.programs import TaskParams, threshold_for
from scheduler.seat_terms import claims_wait, params_wait
from scheduler.sortition import Candidate, Ranking

log = logging.getLogger("dnode.node")
T = TypeVar("T")

REPORT_STAGGER = 4.0  # seconds between a reporter and its backup
FINALIZE_GRACE = 600.0  # seconds past the window a member keeps trying to finalize
JOIN_SETTLE = 1.5  # seconds a node waits for more join intents once m are known
JOIN_STAGGER = 3.0  # seconds between the committee's submitter and its backups
JOIN_REPEAT = 2.0  # seconds between re-broadcasts of a node's own join intent
MPC_SLOT_GAP = 5.0  # seconds between the end of one MPC attempt slot and the next
MPC_REPORT_MARGIN = 30.0  # seconds kept before the report deadline to sign and report
MPC_MIN_ATTEMPT = 15.0  # shortest MPC attempt worth starting
STATUS_EVERY = 5.0  # seconds between refreshes of account figures and state/node.json
START_LOOKBACK = 1000  # blocks of history a starting node replays
BACKUP_WAIT = 8.0  # seconds best-ranked candidates have to offer before backups are seated
RANK_REFRESH = 4.0  # seconds between re-reads of the sortition (the window grows with blocks)
RANK_WANT = 3  # candidates ranked per seat: m seats plus 2 m backups
TERMINAL = TERMINAL_STATUSES


@dataclass
class NodeConfig:
    home: Path
    account: LocalAccount
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False
    max_tasks: int = 4
    poll_interval: float = 0.5
    mpc_timeout: float = 120.0
    auto_finalize: bool = True
    tx_stuck_after: float = 30.0  # seconds before a pending tx is re-sent with higher fees
    confirmations: int = DEFAULT_CONFIRMATIONS  # blocks below the head before acting on events
    metrics_port: int | None = 0  # 127.0.0.1 port of /metrics and /status; 0: any, None: off

    @property
    def state_dir(self) -> Path:
        return self.home / "state"


@dataclass
class TaskRuntime:
    """What the node knows and waits for about one task."""

    task_id: int
    round: int = 0  # 0: the task's committee; 1: its re-execution committee (a dispute)
    params: TaskParams | None = None
    seat: int | None = None
    committee: list[str] = field(default_factory=list)
    contributions: dict[str, Contribution] = field(default_factory=dict)
    intents: dict[str, bytes] = field(default_factory=dict)  # address (lower) -> join sig
    intent_added: trio.Event = field(default_factory=trio.Event)
    signatures: SignatureSet | None = None
    params_known: trio.Event = field(default_factory=trio.Event)
    formed: trio.Event = field(default_factory=trio.Event)
    inputs_complete: trio.Event = field(default_factory=trio.Event)
    quorum: trio.Event = field(default_factory=trio.Event)
    reported: trio.Event = field(default_factory=trio.Event)
    closed: trio.Event = field(default_factory=trio.Event)
    party_port: int | None = None
    party_started: trio.Event = field(default_factory=trio.Event)
    computing: bool = False
    worker_started: bool = False
    restored: bool = False  # the seat was held before this process started (crash/restart)
    peer_declined: trio.Event = field(default_factory=trio.Event)  # no full MPC possible
    failed: bool = False


class NodeDaemon:
    def __init__(
        self,
        cfg: NodeConfig,
        chain: ChainClient,
        transport: Transport,
        executor: Executor | None = None,
        state: NodeState | None = None,
    ) -> None:
        self.cfg = cfg
        self.chain = chain
        # crash-safe memory (seats, shares, results, signatures) and the tx outbox, one file
        self.state = state or open_state(cfg.state_dir)
        if chain.outbox is None:
            chain.outbox = TxOutbox(self.state.path, stuck_after=cfg.tx_stuck_after)
        self.host = transport
        self.executor = executor or SubprocessExecutor()
        self.address = cfg.account.address
        self.tasks: dict[int, TaskRuntime] = {}  # round 0
        self.reruns: dict[int, TaskRuntime] = {}  # round 1: re-execution of a disputed task
        self._tx_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self.chain_id = chain.deployment.chain_id
        self.contract = chain.deployment.address
        self.he = HeWorker(
            transport, cfg.state_dir, self.tasks.get, lambda: list(self.tasks.values())
        )
        self.follower: ChainFollower | None = None
        self.metrics = node_metrics()
        self.metrics_server: MetricsServer | None = None
        self.account_figures: dict[str, int] = {}
        self.last_errors: deque[dict[str, Any]] = deque(maxlen=10)
        self._error_handler = _RecentErrors(self.last_errors)

    # ---- plumbing -------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking chain call in a thread so the trio loop keeps serving peers.

        On cancellation (task closed, SIGTERM) the thread is abandoned rather than awaited: a
        hanging endpoint may take attempts x rpc_timeout to give up, and shutdown must not."""
        run = trio.to_thread.run_sync  # (a stale trio stub lacks abandon_on_cancel)
        return await run(partial(fn, *args), abandon_on_cancel=True)  # type: ignore[call-arg]

    async def _tx(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._tx_lock:  # one nonce sequence per account
            return await self._call(fn, *args)

    def _rt(self, task_id: int, round: int = 0) -> TaskRuntime:
        table = self.reruns if round else self.tasks
        rt = table.get(task_id)
        if rt is None:
            rt = table[task_id] = TaskRuntime(task_id, round)
        return rt

    def _known(self, task_id: int, round: int = 0) -> TaskRuntime | None:
        return (self.reruns if round else self.tasks).get(task_id)

    def _task_dir(self, task_id: int, round: int = 0) -> Path:
        d = self.cfg.state_dir / (f"task-{task_id}-rerun" if round else f"task-{task_id}")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _save(self, task_id: int, name: str, obj: Any, round: int = 0) -> None:
        path = self._task_dir(task_id, round) / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
        tmp.replace(path)

    # ---- service --------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        info = await self._call(self.chain.node_info, self.address)
        if info.peer_id != self.host.peer_id:
            log.warning(
                "this node is not registered with peer id %s; run `dnode stake` to join committees",
                self.host.peer_id,
            )
        self.host.set_handler(PROTO_ANNOUNCE, self._on_announce)
        self.host.set_handler(PROTO_PARAMS, self._on_params_request)
        self.host.set_handler(PROTO_SHARES, self._on_contribution)
        self.host.set_handler(PROTO_SIGNATURE, self._on_signature)
        self.host.set_handler(PROTO_JOIN, self._on_join_request)
        self.he.serve()  # /dnode/blob/1.0.0: HE contexts, ciphertexts and results
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
                self._nursery = nursery
                await self._recover()
                nursery.start_soon(self._watch_chain)
                nursery.start_soon(self._listen_gossip)
                nursery.start_soon(self._refresh_status)
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

    @property
    def metrics_url(self) -> str | None:
        return self.metrics_server.url if self.metrics_server else None

    def tasks_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(TASK_STATES, 0)
        for rt in [*self.tasks.values(), *self.reruns.values()]:
            counts[_task_state(rt)] += 1
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
                info = await self._call(self.chain.node_info, self.address)
                credits = await self._call(self.chain.credits, self.address)
                balance = await self._call(self.chain.balance_of, self.address)
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

    # ---- chain ----------------------------------------------------------------------------

    async def _watch_chain(self) -> None:
        """Act on the contract's events once ``confirmations`` blocks deep (see chainwatch)."""
        backoff = self.cfg.poll_interval
        while True:
            try:
                if self.follower is None:
                    head = await self._call(self.chain.latest_block)
                    start = max(self.chain.deployment.deploy_block, head - START_LOOKBACK)
                    self.follower = ChainFollower(self.chain, start, self.cfg.confirmations)
                batch = await self._call(self.follower.poll)
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
            self._on_orphaned(ev)
        for ev in batch.events:
            try:
                await self._on_chain_event(ev)
            except ContractsError as e:
                log.warning("event %s not handled: %s", ev.name, e)

    def _on_orphaned(self, ev: ChainEvent) -> None:
        """An event this node acted on was reorged out (a reorg deeper than the confirmation
        depth). Forget what it started; if the chain replays the task, it starts afresh."""
        task_id = int(ev.args.get("task_id", 0))
        log.warning(
            "orphaned event %s of task %d (block %d, tx %s) was reorged out",
            ev.name,
            task_id,
            ev.block_number,
            ev.tx_hash,
        )
        if ev.name in ("TaskPosted", "TaskDisputed"):
            rnd = 1 if ev.name == "TaskDisputed" else 0
            rt = (self.reruns if rnd else self.tasks).pop(task_id, None)
            if rt is not None:
                rt.closed.set()  # stops its worker; tunnels and parties go with it

    async def _on_chain_event(self, ev: Any) -> None:
        name, args = ev.name, ev.args
        task_id = int(args.get("task_id", 0))
        if name == "TaskPosted":
            rt = self._rt(task_id)
            if rt.params is not None and rt.params.digest != bytes(args["params_digest"]):
                # params learnt for a task that was reorged out before it was confirmed
                rt.params = None
                rt.params_known = trio.Event()
            # scripts and tests read this line: the block and tx the node acts on
            log.info(
                "task %d posted in block %d (tx %s); considering a seat",
                task_id,
                ev.block_number,
                ev.tx_hash,
            )
            assert self._nursery is not None
            self._nursery.start_soon(self._consider_task, rt, args)
        elif name == "CommitteeFormed":
            rnd = int(args["round"])
            rt = self._rt(task_id, rnd)
            members = [a.lower() for a in args["members"]]
            if self.address.lower() in members:
                rt.seat = members.index(self.address.lower())
                if rnd:
                    log.info("task %d: re-execution seat %d", task_id, rt.seat)
                held = self.state.seat(task_id, rnd)
                if held is None:  # committed before any work on the seat
                    self.state.hold_seat(task_id, rnd, rt.seat)
                if held is None or held.state in OPEN_SEAT_STATES:
                    self._start_worker(rt)
            rt.formed.set()
        elif name == "TaskDisputed":
            log.info("task %d disputed by %s", task_id, args["disputer"])
            rt = self._rt(task_id, 1)
            assert self._nursery is not None
            self._nursery.start_soon(self._consider_task, rt, args)
        elif name == "SeatDeclined":
            known = self._known(task_id, int(args.get("round", 0)))
            if known is not None and str(args["node"]).lower() != self.address.lower():
                known.peer_declined.set()  # every party is needed: stop retrying the MPC
        elif name == "ResultReported":
            known = self._known(task_id, int(args.get("round", 0)))
            if known is not None:
                known.reported.set()
        elif name in ("TaskFinalized", "TaskRefunded", "DisputeResolved"):
            for known in (self.tasks.get(task_id), self.reruns.get(task_id)):
                if known is not None:
                    known.reported.set()
                    known.closed.set()

    async def _consider_task(self, rt: TaskRuntime, posted: dict[str, Any]) -> None:
        """Decide whether to take a seat in a newly posted task, and take it."""
        try:
            await (self._consider_rerun(rt) if rt.round else self._consider(rt))
        except Exception as e:  # never take the node down over one task
            log.error("task %d: seat decision failed", rt.task_id, exc_info=e)

    async def _consider(self, rt: TaskRuntime) -> None:
        posted = await self._call(self.chain.task_info, rt.task_id)
        with trio.move_on_after(params_wait(posted.seat_deadline, await self._chain_now())):
            # gossip may have passed us by; ask peers again until someone knows (bounded)
            while rt.params is None:
                await self._fetch_params(rt)
                with trio.move_on_after(2):
                    await rt.params_known.wait()
        if rt.params is None:
            log.info("task %d: no valid params announced; not taking a seat", rt.task_id)
            return
        if is_he(rt.params) and self.he.validate(rt.task_id, rt.params) is None:
            return
        try:
            info = await self._call(self.chain.node_info, self.address)
            task = await self._call(self.chain.task_info, rt.task_id)
        except ContractsError as e:
            log.warning("task %d: cannot read chain state: %s", rt.task_id, e)
            return
        view = await self._view(info)
        decision = should_claim(view, task, rt.params)
        if not decision.ok:
            log.info("task %d: not claiming a seat: %s", rt.task_id, decision.reason)
            return
        await self._join(rt, task.committee_size, task.seat_deadline)

    async def _view(self, info: Any) -> NodeView:
        runtimes = [*self.tasks.values(), *self.reruns.values()]
        busy = sum(1 for t in runtimes if t.seat is not None and not t.closed.is_set())
        return NodeView(
            address=self.address,
            peer_id=self.host.peer_id,
            registered_peer_id=info.peer_id,
            capabilities=info.capabilities,
            free_stake=info.stake - info.locked,
            seat_collateral=int(self.chain.deployment.params["seat_collateral"]),
            running=busy,
            max_tasks=self.cfg.max_tasks,
        )

    async def _consider_rerun(self, rt: TaskRuntime) -> None:
        """A task was disputed: offer a re-execution seat if this node may hold one (not in
        the original committee, not the requester, disputer or a data owner)."""
        first = self._rt(rt.task_id)
        with trio.move_on_after(30):
            if first.params is None:
                await self._fetch_params(first)
            await first.params_known.wait()
        if first.params is None:
            log.info("task %d: params unknown; not joining the re-execution", rt.task_id)
            return
        if is_he(first.params):
            log.info("task %d: HE re-execution is not run by this node version", rt.task_id)
            return
        rt.params = first.params
        rt.params_known.set()
        try:
            info = await self._call(self.chain.node_info, self.address)
            task = await self._call(self.chain.task_info, rt.task_id)
        except ContractsError as e:
            log.warning("task %d: cannot read chain state: %s", rt.task_id, e)
            return
        reason = self._rerun_ineligible(task, self.address)
        if reason is None:
            # should_claim's node-side checks, with the task viewed as open for the rerun
            view = await self._view(info)
            open_view = _OpenView(task.capability, task.committee_size + 2)
            decision = should_claim(view, open_view, rt.params)
            reason = None if decision.ok else decision.reason
        if reason is not None or task.dispute is None:
            log.info("task %d: not joining the re-execution: %s", rt.task_id, reason)
            return
        await self._join(rt, task.committee_size + 2, task.dispute.seat_deadline)

    def _rerun_ineligible(self, task: Any, address: str) -> str | None:
        if task.status != TaskStatus.DISPUTED:
            return f"task is {task.status.name.lower()}"
        a = address.lower()
        if a in (c.lower() for c in task.committee):
            return "in the original committee"
        if a == task.requester.lower():
            return "the requester"
        if task.dispute is not None and a == task.dispute.disputer.lower():
            return "the disputer"
        return None

    # ---- committee formation (one transaction from signed join intents) -----------------

    async def _join(self, rt: TaskRuntime, m: int, seat_deadline: int) -> None:
        """Offer a seat if the sortition drew this node, and help bind the committee.

        Once the task's seed block is mined, every node ranks the candidates with the same code
        (scheduler.sortition over the registry's stake slots, skipping nodes that cannot take a
        seat). A candidate signs and shares a join intent. The committee is the m best-ranked
        candidates whose intents arrived; a best-ranked candidate that has not offered within
        BACKUP_WAIT seconds is passed over and the next-ranked one (a backup) takes its seat.
        The best-ranked chosen member submits form_committee after a short settle time, the
        others back it up in order; the first transaction wins.
        """
        sig = sign_join(self.cfg.account, self.chain_id, self.contract, rt.task_id, rt.round)
        me = self.address.lower()
        rt.intents[me] = sig
        msg = JoinIntent(rt.task_id, rt.round, self.address, sig).to_bytes()
        what = "re-execution committee" if rt.round else "committee"
        last_sent = -JOIN_REPEAT
        ranking: Ranking | None = None
        refreshed = -RANK_REFRESH
        seeded: float | None = None  # when this node first knew the ranking
        said_not_drawn = said_backup = False
        while not rt.formed.is_set():
            if await self._chain_now() > seat_deadline:
                log.info("task %d: %s did not form before its seat deadline", rt.task_id, what)
                return
            if trio.current_time() - refreshed >= RANK_REFRESH:
                refreshed = trio.current_time()
                try:
                    cands = await self._call(self._candidates, rt)
                except ContractsError as e:
                    log.warning("task %d: cannot rank candidates: %s", rt.task_id, e)
                    cands = None
                if cands is not None:
                    ranking = await self._call(cands.ranking, RANK_WANT * m)
                    if seeded is None:
                        seeded = trio.current_time()
                        log.info(
                            "task %d: sortition ranks %s",
                            rt.task_id,
                            ", ".join(f"{c.address}@{c.draw}" for c in ranking.candidates),
                        )
            if ranking is None or seeded is None:
                with trio.move_on_after(0.5):
                    await rt.formed.wait()
                continue
            if ranking.index(me) is None:
                if not said_not_drawn:
                    said_not_drawn = True
                    log.info("task %d: not drawn for the %s (yet)", rt.task_id, what)
                with trio.move_on_after(0.5):
                    await rt.formed.wait()
                continue
            if trio.current_time() - last_sent >= JOIN_REPEAT:
                if last_sent < 0:
                    pos = ranking.index(me)
                    log.info("task %d: drawn as candidate #%d; offering to join the %s",
                             rt.task_id, (pos or 0) + 1, what)  # fmt: skip
                last_sent = trio.current_time()
                self._nursery_spawn(self._broadcast_join, msg)
            arrived = [c for c in ranking.candidates if c.address.lower() in rt.intents]
            chosen = arrived[:m]
            members = [c.address.lower() for c in chosen]
            if len(chosen) == m and me in members:
                missing = [
                    c.address for c in ranking.candidates[:m] if c.address.lower() not in rt.intents
                ]
                if missing and trio.current_time() - seeded < BACKUP_WAIT:
                    with trio.move_on_after(0.5):
                        await rt.formed.wait()
                    continue
                if missing and not said_backup:
                    said_backup = True
                    log.info(
                        "task %d: candidate(s) %s did not offer within %.0f s; backups take "
                        "their seats: %s",
                        rt.task_id,
                        ", ".join(missing),
                        BACKUP_WAIT,
                        ", ".join(c.address for c in chosen),
                    )
                with trio.move_on_after(JOIN_SETTLE + members.index(me) * JOIN_STAGGER):
                    await rt.formed.wait()
                if rt.formed.is_set():
                    return
                if await self._submit_committee(rt, chosen):
                    return
                refreshed = -RANK_REFRESH  # re-read who is eligible now
                continue
            with trio.move_on_after(0.5):
                await rt.formed.wait()

    def _candidates(self, rt: TaskRuntime) -> Candidates | None:
        """The chain's sortition for this round (None until the seed block is mined)."""
        task = self.chain.task_info(rt.task_id)
        params = rt.params if rt.round == 0 else self._rt(rt.task_id).params
        owners = params.owners if params is not None else ()
        return candidates_for(self.chain, task, rt.round, owners)

    async def _submit_committee(self, rt: TaskRuntime, chosen: list[Candidate]) -> bool:
        forming = TaskStatus.DISPUTED if rt.round else TaskStatus.OPEN
        if await self._call(self.chain.task_status, rt.task_id) != forming:
            return True
        me = self.address.lower()
        members = [c.address for c in chosen]
        sigs = [None if a.lower() == me else rt.intents[a.lower()] for a in members]
        draws = [c.draw for c in chosen]
        form = self.chain.form_rerun_committee if rt.round else self.chain.form_committee
        try:
            await self._tx(form, rt.task_id, members, sigs, draws)
            log.info(
                "task %d: round %d committee bound on-chain (%d members)",
                rt.task_id,
                rt.round,
                len(members),
            )
            return True
        except TransactionReverted as e:
            log.info("task %d: committee not bound: %s", rt.task_id, e.reason)
            if "not active" in e.reason or "not registered" in e.reason:
                # drop members that are no longer eligible and try again later
                for a in members:
                    if a.lower() != me and not await self._call(self.chain.is_active, a):
                        rt.intents.pop(a.lower(), None)
            return False
        except ContractsError as e:
            log.warning("task %d: form_committee failed: %s", rt.task_id, e)
            return False

    def _nursery_spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    async def _broadcast_join(self, msg: bytes) -> None:
        with trio.move_on_after(10):
            try:
                await self.host.publish(TOPIC_TASKS, msg)
            except NodeError as e:
                log.debug("join intent not gossiped: %s", e)
            for peer in list(self.host.connected_peers()):
                try:
                    await self.host.request(peer, PROTO_JOIN, msg, timeout=5)
                except NodeError as e:
                    log.debug("join intent to %s not delivered: %s", peer, e)

    async def _accept_join(self, peer: str, data: bytes) -> None:
        intent = JoinIntent.parse(peer, data, self.chain_id, self.contract)
        rt = self._rt(intent.task_id, intent.round)
        key = intent.node.lower()
        if key in rt.intents or rt.formed.is_set():
            return
        params = self._rt(intent.task_id).params
        if params is not None and params.is_owner(intent.node):
            raise ProtocolViolation(peer, f"{intent.node} is a data owner of the task")
        if intent.round:
            task = await self._call(self.chain.task_info, intent.task_id)
            reason = self._rerun_ineligible(task, intent.node)
            if reason is not None:
                raise ProtocolViolation(peer, f"{intent.node} cannot re-execute: {reason}")
        if not await self._call(self.chain.is_active, intent.node):
            raise ProtocolViolation(peer, f"{intent.node} is not an active node")
        rt.intents[key] = intent.signature
        rt.intent_added.set()

    async def _on_join_request(self, peer: str, data: bytes) -> bytes:
        try:
            await self._accept_join(peer, data)
        except (ProtocolViolation, ContractsError) as e:
            log.info("join intent from %s dropped: %s", peer, e)
            return error(str(e))
        return ok()

    # ---- params ---------------------------------------------------------------------------

    async def _accept_params(
        self, task_id: int, params_bytes: bytes, peer: str, how: str = "announce"
    ) -> TaskParams:
        task = await self._call(self.chain.task_info, task_id)
        if task.status == TaskStatus.NONE:
            raise ProtocolViolation(peer, f"task {task_id} does not exist on-chain")
        try:
            params = TaskParams.from_bytes(params_bytes)
        except SchedulerError as e:
            raise ProtocolViolation(peer, str(e)) from None
        if params.digest != task.params_digest:
            raise ProtocolViolation(peer, f"params do not match task {task_id}'s on-chain digest")
        if params.capability != task.capability or (
            params.canonical() != params_bytes and params.digest != task.params_digest
        ):
            raise ProtocolViolation(peer, "params disagree with the on-chain task")
        rt = self._rt(task_id)
        if rt.params is not None and rt.params.digest != task.params_digest:
            rt.params = None  # stale: learnt for a task id that a reorg reassigned
            rt.params_known = trio.Event()
        if rt.params is None:
            rt.params = params
            self._save(task_id, "params.json", params.to_dict())
            self.state.save_params(task_id, params.canonical())
            rt.params_known.set()
            # scripts/bench_network.py reads this line's timestamp (gossip latency)
            log.info("task %d: params known (via %s from %s)", task_id, how, peer)
        return params

    async def _on_announce(self, peer: str, data: bytes) -> bytes:
        try:
            ann = Announcement.parse(peer, data)
            known = self._rt(ann.task_id).params
            fresh = known is None or known.canonical() != ann.params
            await self._accept_params(ann.task_id, ann.params, peer)
        except (ProtocolViolation, ContractsError) as e:
            log.warning("announce from %s dropped: %s", peer, e)
            return error(str(e))
        if fresh:  # relay to the rest of the network
            with trio.move_on_after(5):
                try:
                    await self.host.publish(TOPIC_TASKS, data)
                except NodeError as e:
                    log.warning("cannot gossip task %d: %s", ann.task_id, e)
        return ok()

    async def _listen_gossip(self) -> None:
        async for peer, data in self.host.subscribe(TOPIC_TASKS):
            try:
                if b'"kind":"join"' in data:
                    await self._accept_join(peer, data)
                    continue
                ann = Announcement.parse(peer, data)
                if self._rt(ann.task_id).params is None:
                    await self._accept_params(ann.task_id, ann.params, peer, "gossip")
            except (ProtocolViolation, ContractsError) as e:
                log.warning("gossip from %s dropped: %s", peer, e)
            except Exception as e:  # a bug must not stop the gossip listener
                log.error("gossip from %s not handled", peer, exc_info=e)

    async def _on_params_request(self, peer: str, data: bytes) -> bytes:
        try:
            obj = loads(peer, data)
            task_id = obj.get("task_id")
            if not isinstance(task_id, int):
                raise ProtocolViolation(peer, "task_id missing")
        except ProtocolViolation as e:
            log.warning("%s", e)
            return error(str(e))
        rt = self.tasks.get(task_id)
        if rt is None or rt.params is None:
            return error(f"params of task {task_id} unknown here")
        return ok(params="0x" + rt.params.canonical().hex())

    async def _fetch_params(self, rt: TaskRuntime) -> None:
        """Ask connected peers for params we missed on gossip (e.g. after a restart)."""
        for peer in list(self.host.connected_peers()):
            if rt.params is not None:
                return
            try:
                reply = await self.host.request(
                    peer, PROTO_PARAMS, dumps({"task_id": rt.task_id}), timeout=5
                )
                obj = loads(peer, reply)
                if obj.get("ok") and isinstance(obj.get("params"), str):
                    params = bytes.fromhex(obj["params"][2:])
                    await self._accept_params(rt.task_id, params, peer, "fetch")
            except (NodeError, ContractsError, ValueError) as e:
                log.debug("params of task %d from %s: %s", rt.task_id, peer, e)

    # ---- inputs ---------------------------------------------------------------------------

    async def _on_contribution(self, peer: str, data: bytes) -> bytes:
        try:
            c = Contribution.parse(peer, data)
            rt = self._known(c.task_id, c.round)
            if (c.chain_id, c.contract.lower()) != (self.chain_id, self.contract.lower()):
                raise ProtocolViolation(peer, "contribution is for another chain or contract")
            if rt is None or rt.seat is None:
                raise ProtocolViolation(peer, f"this node holds no seat in task {c.task_id}")
            if rt.params is None:
                raise ProtocolViolation(peer, f"params of task {c.task_id} not known yet")
            if c.seat != rt.seat:
                raise ProtocolViolation(peer, f"shares for seat {c.seat} sent to seat {rt.seat}")
            if not rt.params.is_owner(c.owner):
                raise ProtocolViolation(peer, f"{c.owner} is not a data owner of task {c.task_id}")
            if c.modulus != field_modulus(rt.params.bit_length):
                raise ProtocolViolation(peer, "shares are over the wrong field")
            if rt.computing:
                raise ProtocolViolation(peer, "the computation has already started")
            prev = rt.contributions.get(c.owner.lower())
            if prev is not None and prev.shares != c.shares:
                raise ProtocolViolation(peer, f"{c.owner} already contributed different shares")
        except ProtocolViolation as e:
            log.warning("%s", e)
            return error(e.detail)
        # what a node stores is its own share of each owner's values, never the values;
        # committed before the owner hears "ok", so a restart still has them
        self.state.save_shares(c.task_id, c.round, c.owner, c.to_bytes())
        self._save(c.task_id, f"shares-{c.owner.lower()}.json", json.loads(c.to_bytes()), c.round)
        rt.contributions[c.owner.lower()] = c
        log.info(
            "task %d round %d: shares from owner %s (%d/%d)",
            c.task_id,
            c.round,
            c.owner,
            len(rt.contributions),
            len(rt.params.owners),
        )
        if len(rt.contributions) == len(rt.params.owners):
            rt.inputs_complete.set()
        return ok()

    # ---- the task worker ------------------------------------------------------------------

    def _start_worker(self, rt: TaskRuntime) -> None:
        if rt.worker_started:
            return
        rt.worker_started = True
        assert self._nursery is not None
        self._nursery.start_soon(self._task_worker, rt)

    async def _task_worker(self, rt: TaskRuntime) -> None:
        """Seat held: wait for the committee and inputs, compute, sign, report, finalize."""
        with trio.CancelScope() as scope:
            self._nursery_watch_close(rt, scope)
            try:
                await self._work(rt)
                self.state.set_seat_state(rt.task_id, rt.round, "closed")
            except Exception as e:  # one task failing must never take the node down
                errors = _leaves(e)
                for err in errors:
                    if isinstance(err, (MpcError, ContractsError, NodeError, OracleError)):
                        log.error("task %d failed on this node: %s", rt.task_id, err)
                    else:
                        log.error("task %d failed on this node (bug)", rt.task_id, exc_info=err)
                rt.failed = True
                self.metrics.inc("task_failures_total")
                failure = {"error": "; ".join(map(str, errors))}
                self._save(rt.task_id, "failure.json", failure, rt.round)
                await self._abandon(rt, f"failed on this node: {errors[0]}")
            finally:
                self.host.remove_tunnel_target(self._tunnel_key(rt.task_id, rt.round))
        if rt.closed.is_set():
            self.state.set_seat_state(rt.task_id, rt.round, "closed")
            log.info("task %d closed", rt.task_id)

    def _sign_once(self, rt: TaskRuntime, result: bytes) -> bytes:
        """The report signature, through the signing-protection table (never two results)."""

        def sign(r: bytes) -> bytes:
            return sign_report(self.cfg.account, self.chain_id, self.contract, rt.task_id, r)

        try:
            return self.state.sign_once(rt.task_id, rt.round, result, sign)
        except DoubleSignRefused as e:
            log.error("signing protection: %s", e)
            raise

    async def _abandon(self, rt: TaskRuntime, reason: str) -> None:
        """Give the seat up on-chain (never slashed for it) unless this node already signed a
        result: that signature may be in a report, and a declined signer voids the report."""
        if self.state.signature(rt.task_id) is not None:
            log.info("task %d: signed already; keeping the seat (deadlines decide)", rt.task_id)
            return
        working = TaskStatus.RECOMPUTING if rt.round else TaskStatus.COMPUTING
        with trio.move_on_after(120):
            for _ in range(3):  # another member's decline may change the record under us
                try:
                    if await self._call(self.chain.task_status, rt.task_id) == working:
                        await self._tx(self.chain.decline, rt.task_id, reason[:120])
                        log.info(
                            "task %d: declined round %d seat: %s", rt.task_id, rt.round, reason
                        )
                    break
                except TransactionReverted as e:
                    if "bad task record" not in e.reason and "bad dispute" not in e.reason:
                        log.warning("task %d: could not decline the seat: %s", rt.task_id, e)
                        break
                except ContractsError as e:
                    log.warning("task %d: could not decline the seat: %s", rt.task_id, e)
                    break
        self.state.set_seat_state(rt.task_id, rt.round, "abandoned", reason)

    # ---- restart --------------------------------------------------------------------------

    async def _recover(self) -> None:
        """After a restart (or kill -9): settle the outbox, then resume or abandon each seat
        the state db says this node held (see docs/protocol.md, "Restarts")."""
        outbox = self.chain.outbox
        if outbox is not None and outbox.pending(self.address):
            try:
                rows = await self._call(outbox.recover, self.chain.w3, self.cfg.account, 60.0)
                for r in rows:
                    log.info("outbox: %s nonce %d after restart: %s", r.action, r.nonce, r.state)
            except ContractsError as e:
                log.warning("outbox not settled yet: %s", e)
        for held in self.state.open_seats():
            try:
                await self._resume_seat(held)
            except (ContractsError, NodeError, SchedulerError) as e:
                log.warning("task %d: seat not resumed: %s", held.task_id, e)

    async def _resume_seat(self, held: HeldSeat) -> None:
        task_id, rnd = held.task_id, held.round
        rt = self._rt(task_id, rnd)
        rt.seat, rt.restored, rt.worker_started = held.seat, True, True
        canonical = self.state.params(task_id)
        if canonical is not None:
            params = TaskParams.from_bytes(canonical)
            for r in (self._rt(task_id), rt):
                if r.params is None:
                    r.params = params
                    r.params_known.set()
        for owner, data in self.state.shares(task_id, rnd).items():
            rt.contributions[owner] = Contribution.parse("state-db", data)
        if rt.params is not None and len(rt.contributions) == len(rt.params.owners):
            rt.inputs_complete.set()
        task = await self._call(self.chain.task_info, task_id)
        seats = task.dispute.committee if rnd and task.dispute else list(task.committee)
        declined = task.dispute.declined_bitmap if rnd and task.dispute else task.declined_bitmap
        seated = held.seat < len(seats) and seats[held.seat].lower() == self.address.lower()
        if task.status in TERMINAL or not seated or declined >> held.seat & 1:
            self.state.set_seat_state(task_id, rnd, "closed", f"{task.status.name.lower()}")
            return
        working = TaskStatus.RECOMPUTING if rnd else TaskStatus.COMPUTING
        rt.formed.set()
        if task.status == working:
            signed = self.state.signature(task_id) is not None
            computed = self.state.result(task_id, rnd) is not None
            # MPC: with every share stored the party reruns in the next retry slot; with some
            # missing it waits (bounded by input_timeout) for owners that have not sent yet
            rerun = rt.params is not None and not is_he(rt.params)
            if signed or computed or rerun:
                how = "signed" if signed else "computed" if computed else "rerunning the MPC"
                if not (signed or computed or rt.inputs_complete.is_set()):
                    how = "waiting for inputs"
                log.info("task %d: resuming round %d seat %d (%s)", task_id, rnd, held.seat, how)
                self._nursery_spawn(self._task_worker, rt)
            else:
                log.info("task %d: cannot resume round %d seat (inputs lost)", task_id, rnd)
                await self._abandon(rt, "restarted without the task's inputs")
        elif rnd == 0 and task.status == TaskStatus.REPORTED:
            log.info("task %d: resuming (reported; finalizing when the window closes)", task_id)
            self._nursery_spawn(self._resume_settle, rt)
        elif rnd == 0 and task.status in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING):
            self._nursery_spawn(self._resume_settle, rt)

    async def _resume_settle(self, rt: TaskRuntime) -> None:
        """A reported (or disputed) task this node sat on: finalize or settle, as before."""
        try:
            task = await self._call(self.chain.task_info, rt.task_id)
            assert rt.seat is not None
            if task.status == TaskStatus.REPORTED:
                await self._finalize(rt)
            else:
                await self._settle_dispute(
                    rt, reporter_rank(rt.task_id, rt.seat, len(task.committee))
                )
            self.state.set_seat_state(rt.task_id, rt.round, "closed")
        except ContractsError as e:
            log.warning("task %d: settling after restart failed: %s", rt.task_id, e)

    def _nursery_watch_close(self, rt: TaskRuntime, scope: trio.CancelScope) -> None:
        async def watch() -> None:
            await rt.closed.wait()
            scope.cancel()

        assert self._nursery is not None
        self._nursery.start_soon(watch)

    async def _work(self, rt: TaskRuntime) -> None:
        """One committee's flow; round 1 is the same for the re-execution committee of a
        disputed task (its own seats, quorum, deadline, tunnels and shares)."""
        task = await self._call(self.chain.task_info, rt.task_id)
        if rt.round and rt.params is None:  # e.g. a restart: the seat is replayed from the log
            first = self._rt(rt.task_id)
            await first.params_known.wait()
            rt.params = first.params
            rt.params_known.set()
        await rt.params_known.wait()
        assert rt.params is not None and rt.seat is not None
        params = rt.params
        await rt.formed.wait()
        if rt.round:
            task = await self._call(self.chain.task_info, rt.task_id)
            assert task.dispute is not None
            deadline = task.dispute.report_deadline
            rt.committee = await self._call(self.chain.rerun_seats, rt.task_id)
        else:
            deadline = task.report_deadline
            rt.committee = await self._call(self.chain.seats, rt.task_id)
        m = len(rt.committee)
        quorum = m // 2 + 1  # the contract's rule for both rounds
        peers = []
        for addr in rt.committee:
            peers.append((await self._call(self.chain.node_info, addr)).peer_id)
        committee = {"seats": rt.committee, "peers": peers}
        self._save(rt.task_id, "committee.json", committee, rt.round)
        self.state.set_committee(rt.task_id, rt.round, rt.committee)
        if not is_he(params):
            self._accept_tunnels(rt, peers)
        rt.signatures = SignatureSet(self.chain_id, self.contract, rt.task_id, rt.committee, quorum)
        log.info(
            "task %d: round %d committee formed, seat %d of %d; waiting for inputs",
            rt.task_id,
            rt.round,
            rt.seat,
            m,
        )
        stored = self.state.result(rt.task_id, rt.round)
        if stored is not None:  # computed before a restart: never recompute, never re-sign
            result_bytes, record = stored
            log.info("task %d: round %d result restored from the state db", rt.task_id, rt.round)
        elif is_he(params):  # the compute step is pluggable; signing and reporting are shared
            t0 = time.monotonic()
            result_bytes, record = await self.he.compute(
                rt, params, peers, self._task_dir(rt.task_id)
            )
            self.metrics.observe("he_seconds", time.monotonic() - t0)
        else:
            result_bytes, record = await self._mpc_compute(rt, params, peers, m, deadline)
        self.state.save_result(rt.task_id, rt.round, result_bytes, record)
        self._save(rt.task_id, "result.json", record, rt.round)
        sig = self._sign_once(rt, result_bytes)
        rt.signatures.add(result_bytes, sig)
        self._save(
            rt.task_id,
            "signature.json",
            {"result": "0x" + result_bytes.hex(), "signature": "0x" + sig.hex()},
            rt.round,
        )
        msg = SignatureMessage(rt.task_id, result_bytes, sig, rt.round).to_bytes()
        async with trio.open_nursery() as n:
            for i, peer in enumerate(peers):
                if i != rt.seat:
                    n.start_soon(self._send_signature, peer, msg)
        if rt.signatures.quorum_result() is not None:
            rt.quorum.set()
        await self._report(rt, m, deadline)
        if rt.round == 0:
            await self._finalize(rt)  # an upheld or overturned re-execution settles at report

    async def _mpc_compute(
        self, rt: TaskRuntime, params: TaskParams, peers: list[str], m: int, deadline: int
    ) -> tuple[bytes, dict[str, Any]]:
        # restarted with every share: the others' session broke, they retry in the slots
        aligned = rt.restored and rt.inputs_complete.is_set()
        with trio.move_on_after(params.input_timeout):
            await rt.inputs_complete.wait()
        if not rt.inputs_complete.is_set():
            raise MpcError(
                rt.task_id,
                f"only {len(rt.contributions)} of {len(params.owners)} data owners "
                "delivered shares",
            )
        if aligned:
            await self._await_mpc_slot(rt, deadline)
        while True:
            failed: MpcError | None = None
            try:
                timeout = await self._attempt_timeout(deadline)
                result = await self._compute(rt, params, peers, m, timeout)
            except MpcError as e:  # e.g. a party was killed: every party retries in step
                failed = e
            except BaseExceptionGroup as eg:  # raised through the tunnels' nursery
                leaves = _leaves(eg)
                if not all(isinstance(x, MpcError) for x in leaves):
                    raise
                failed = cast(MpcError, leaves[0])
            if failed is None:
                break
            log.info("task %d: MPC attempt failed (%s)", rt.task_id, failed.detail)
            await self._await_mpc_slot(rt, deadline, failed)
        result_bytes = result.encode()
        return result_bytes, {"result": "0x" + result_bytes.hex(), "value": str(result)}

    async def _await_mpc_slot(
        self, rt: TaskRuntime, deadline: int, failed: MpcError | None = None
    ) -> None:
        """Sleep until the next MPC retry slot, or raise ``failed`` if none is left.

        Slots are a grid every ``mpc_timeout + MPC_SLOT_GAP`` seconds counted back from the
        report deadline (minus a margin to sign and report), identical on every member, so a
        restarted member and the ones whose session broke start fresh parties together and no
        stale party is left listening (each attempt ends before the next slot)."""
        slot = self.cfg.mpc_timeout + MPC_SLOT_GAP
        last = deadline - MPC_REPORT_MARGIN  # no attempt may run past this chain time
        now = await self._chain_now()
        k = int((last - now) // slot)
        if k >= 1 and not rt.peer_declined.is_set():
            start = last - k * slot
            log.info("task %d: next MPC attempt in %.0f s (slot %d)", rt.task_id, start - now, k)
            with trio.move_on_after(max(0.0, start - now)):
                await rt.peer_declined.wait()
        if k < 1 or rt.peer_declined.is_set():
            why = "a member declined its seat" if k >= 1 else "no time left before the deadline"
            raise MpcError(rt.task_id, f"{failed.detail + '; ' if failed else ''}{why}")
        rt.party_port = free_port()  # a fresh party; tunnels resolve to it once it listens
        rt.party_started = trio.Event()

    async def _attempt_timeout(self, deadline: int) -> float:
        """An MPC attempt ends just before the first slot boundary at least MPC_MIN_ATTEMPT s
        away (at most mpc_timeout), so it never overlaps the next retry slot."""
        slot = self.cfg.mpc_timeout + MPC_SLOT_GAP
        last = deadline - MPC_REPORT_MARGIN
        now = await self._chain_now()
        k = int((last - now - MPC_MIN_ATTEMPT) // slot)
        end = last - max(k, 0) * slot
        return max(MPC_MIN_ATTEMPT, min(self.cfg.mpc_timeout, end - now - 1))

    def _tunnel_key(self, task_id: int, round: int = 0) -> str:
        return f"mpc:{self.chain_id}:{self.contract.lower()}:{task_id}:{round}"

    def _accept_tunnels(self, rt: TaskRuntime, peers: list[str]) -> None:
        """Let exactly this task's committee members reach our MPyC party, once it listens."""
        key = self._tunnel_key(rt.task_id, rt.round)
        members = set(peers)
        rt.party_port = free_port()

        async def resolve(peer_id: str, k: str) -> tuple[str, int] | None:
            if k != key or peer_id not in members:
                log.warning("tunnel for %s from %s refused", k, peer_id)
                return None
            with trio.move_on_after(self.cfg.mpc_timeout):
                await rt.party_started.wait()
            if not rt.party_started.is_set() or rt.party_port is None:
                return None
            return ("127.0.0.1", rt.party_port)

        self.host.set_tunnel_target(key, resolve)

    async def _compute(
        self, rt: TaskRuntime, params: TaskParams, peers: list[str], m: int, timeout: float
    ) -> AggregateResult:
        assert rt.seat is not None and rt.params is not None
        key = self._tunnel_key(rt.task_id, rt.round)
        remote = {i: p for i, p in enumerate(peers) if i != rt.seat}
        order = [o.lower() for o in params.owners]
        shares = [list(rt.contributions[o].shares) for o in order]
        async with tunnel_forwarders(self.host, key, remote, rt.seat) as ports:
            assert rt.party_port is not None  # set when the committee formed
            own = rt.party_port
            parties = [("127.0.0.1", own if i == rt.seat else ports[i]) for i in range(m)]
            job = MpcJob(
                task_id=rt.task_id,
                program=params.program,
                kind=params.kind,
                frac_bits=params.frac_bits,
                bit_length=params.bit_length,
                index=rt.seat,
                parties=parties,
                threshold=threshold_for(m),
                shares=shares,
            )
            rt.computing = True
            log.info("task %d: MPC party %d of %d starting", rt.task_id, rt.seat, m)
            t0 = time.monotonic()
            # tunnels into our party wait for this event: it is set once the party listens
            out = await self.executor.run_party(job, timeout=timeout, listening=rt.party_started)
            self.metrics.observe("mpc_seconds", time.monotonic() - t0)
        log.info("task %d: MPC done", rt.task_id)
        return AggregateResult.from_fractions(out.values(), out.count)

    async def _send_signature(self, peer: str, msg: bytes) -> None:
        for attempt in range(5):
            try:
                await self.host.request(peer, PROTO_SIGNATURE, msg, timeout=10)
                return
            except NodeError as e:
                log.info("signature to %s not delivered (attempt %d): %s", peer, attempt + 1, e)
                await trio.sleep(1 + attempt)

    async def _on_signature(self, peer: str, data: bytes) -> bytes:
        try:
            msg = SignatureMessage.parse(peer, data)
            rt = self._known(msg.task_id, msg.round)
            if rt is None or rt.signatures is None:
                # signatures can outrun our own MPC end; wait briefly for the committee view
                with trio.move_on_after(30):
                    while (
                        rt := self._known(msg.task_id, msg.round)
                    ) is None or rt.signatures is None:
                        await trio.sleep(0.2)
            if rt is None or rt.signatures is None:
                raise ProtocolViolation(peer, f"no committee known for task {msg.task_id}")
            try:
                rt.signatures.add(msg.result, msg.signature)
            except OracleError as e:
                raise ProtocolViolation(peer, str(e)) from None
        except ProtocolViolation as e:
            log.warning("%s", e)
            return error(e.detail)
        if rt.signatures.conflicting():
            log.error("task %d: committee members signed different results", msg.task_id)
        if rt.signatures.quorum_result() is not None:
            rt.quorum.set()
        return ok()

    async def _report(self, rt: TaskRuntime, m: int, deadline: int) -> None:
        assert rt.seat is not None and rt.signatures is not None
        rank = reporter_rank(rt.task_id, rt.seat, m)
        with trio.move_on_after(max(5.0, deadline - await self._chain_now())):
            await rt.quorum.wait()
            with trio.move_on_after(rank * REPORT_STAGGER):
                await rt.reported.wait()
        if rt.reported.is_set():
            return
        status = await self._call(self.chain.task_status, rt.task_id)
        if status != (TaskStatus.RECOMPUTING if rt.round else TaskStatus.COMPUTING):
            rt.reported.set()
            return
        q = rt.signatures.quorum_result()
        if q is None:
            raise MpcError(rt.task_id, "no quorum of matching signatures before the deadline")
        result, sigs = q
        task = await self._call(self.chain.task_info, rt.task_id)  # issue 12: claim period
        await trio.sleep(claims_wait(task.dispute if rt.round else task, await self._chain_now()))
        submit = self.chain.report_rerun if rt.round else self.chain.report
        try:
            await self._tx(submit, rt.task_id, result, sigs)
            log.info(
                "task %d: round %d result reported with %d signatures",
                rt.task_id,
                rt.round,
                len(sigs),
            )
        except TransactionReverted as e:
            log.info("task %d: report not needed: %s", rt.task_id, e.reason)
        rt.reported.set()

    async def _finalize(self, rt: TaskRuntime) -> None:
        """Finalize once the challenge window has passed in chain time (backups stagger)."""
        if not self.cfg.auto_finalize:
            return
        period = int(self.chain.deployment.params["challenge_period"])
        task = await self._call(self.chain.task_info, rt.task_id)
        if task.status != TaskStatus.REPORTED:
            return
        assert rt.seat is not None
        rank = reporter_rank(rt.task_id, rt.seat, task.committee_size)
        opens_at = task.reported_at + period
        give_up = trio.current_time() + period + FINALIZE_GRACE
        with trio.move_on_after(rank * REPORT_STAGGER):
            await rt.closed.wait()
        while not rt.closed.is_set() and trio.current_time() < give_up:
            now = await self._chain_now()
            if now < opens_at:
                with trio.move_on_after(min(opens_at - now, 5)):
                    await rt.closed.wait()
                continue
            try:
                await self._tx(self.chain.finalize, rt.task_id)
                log.info("task %d: finalized", rt.task_id)
                return
            except TransactionReverted as e:
                st = await self._call(self.chain.task_status, rt.task_id)
                if st in TERMINAL:
                    return
                if st in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING):
                    await self._settle_dispute(rt, rank)
                    return
                log.info("task %d: finalize not yet possible: %s", rt.task_id, e.reason)
                with trio.move_on_after(2):
                    await rt.closed.wait()

    async def _settle_dispute(self, rt: TaskRuntime, rank: int) -> None:
        """The result was disputed. A re-execution report settles it at once; if the
        re-execution committee never forms or never reports, an original member calls
        resolve_dispute once its deadline has passed (backups stagger)."""
        log.info("task %d: result disputed; waiting for the re-execution", rt.task_id)
        while not rt.closed.is_set():
            task = await self._call(self.chain.task_info, rt.task_id)
            if task.status in TERMINAL or task.dispute is None:
                return
            d = task.dispute
            due = d.seat_deadline if task.status == TaskStatus.DISPUTED else d.report_deadline
            wait = due + 1 + rank * REPORT_STAGGER - await self._chain_now()
            if wait > 0:
                with trio.move_on_after(min(wait, 5)):
                    await rt.closed.wait()
                continue
            try:
                await self._tx(self.chain.resolve_dispute, rt.task_id)
                log.info("task %d: dispute resolved (re-execution missed its deadline)", rt.task_id)
                return
            except TransactionReverted as e:
                log.info("task %d: resolve_dispute not possible: %s", rt.task_id, e.reason)
                with trio.move_on_after(2):
                    await rt.closed.wait()

    async def _chain_now(self) -> int:
        """The timestamp the next block will carry: chains never go back, and may run ahead of
        the wall clock (a devnet stamps each block at least one second after its parent)."""
        latest = await self._call(self.chain.block_timestamp)
        return max(int(time.time()), latest + 1)


TASK_STATES = ("watching", "seated", "computing", "reported", "closed", "failed")


def _task_state(rt: TaskRuntime) -> str:
    if rt.failed:
        return "failed"
    if rt.closed.is_set():
        return "closed"
    if rt.reported.is_set():
        return "reported"
    if rt.computing:
        return "computing"
    return "seated" if rt.seat is not None else "watching"


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


@dataclass(frozen=True)
class _OpenView:
    """A disputed task as ``should_claim`` sees a seat on its re-execution committee."""

    capability: int
    committee_size: int
    status: TaskStatus = TaskStatus.OPEN
    seats_taken: int = 0


def _leaves(e: BaseException) -> list[BaseException]:
    """The real errors inside (possibly nested) exception groups from trio nurseries."""
    if isinstance(e, BaseExceptionGroup):
        return [leaf for sub in e.exceptions for leaf in _leaves(sub)]
    return [e]
