"""The owner agent daemon: watches the chain, decides under the owner's policy, shares the
owner's dataset to each seated committee exactly once per round, and delivers until every
seat has acknowledged.

Flow per task (each step recorded in node.owner.state before it has effects):
  TaskPosted      -> params (gossip, or fetched from peers; checked against the chain digest)
                  -> not an owner: ignored; else dataset + offer + policy -> decision
  still open      -> contributing decision: round 0's ONE sharing encoded and stored ahead
                     (it depends only on the committee's size; nothing is sent)
  committee seated (round 0: COMPUTING; round 1, a dispute's re-execution: RECOMPUTING)
                  -> contributing decision: committee verified (scheduler.committee_check),
                     the sharing stored (round 1: encoded now), then delivered
                     (node.owner.deliver)
  settled         -> closed, its sharings deleted
A reconcile loop drives the steps from the stored decisions and the chain state, so a
restarted agent picks up where the killed one was; the owner's approve / reject (CLI, the
same db) are picked up by the same loop.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import trio
from eth_account.signers.local import LocalAccount

from dnode.contracts.client import TERMINAL_STATUSES, TaskInfo, TaskStatus
from dnode.contracts.errors import ContractsError
from dnode.node.chainwatch import ChainFollower
from dnode.node.errors import NodeError, P2PError
from dnode.node.metrics import Metrics, MetricsServer
from dnode.node.owner.config import Dataset, OwnerConfig
from dnode.node.owner.deliver import deliver_round
from dnode.node.owner.offer import build_offer, dataset_for
from dnode.node.owner.policy import ACCEPT, PENDING, REJECT, decide
from dnode.node.owner.state import (
    ACCEPTED,
    CONTRIBUTING,
    REFUSED,
    REJECTED,
    Decision,
    OwnerState,
    SeatDelivery,
)
from dnode.node.owner.state import PENDING as PENDING_STATE
from dnode.node.peer_client import fetch_params, signed_contributions
from dnode.node.protocol import (
    PROTO_NOTICE,
    TOPIC_TASKS,
    Announcement,
    OwnerNotice,
    check_reply,
)
from dnode.node.transport import Transport
from dnode.scheduler.committee_check import verified_committee
from dnode.scheduler.dp import budget_refusal
from dnode.scheduler.errors import CommitteeNotRanked, SchedulerError, SeatClaimsOpen
from dnode.scheduler.programs import TaskParams

log = logging.getLogger("dnode.owner")
T = TypeVar("T")

OUTCOME_STATE = {ACCEPT: ACCEPTED, PENDING: PENDING_STATE, REJECT: REJECTED}
ROUND_STATUS = {0: TaskStatus.COMPUTING, 1: TaskStatus.RECOMPUTING}
PARAMS_RETRY = 3.0  # seconds between attempts to learn a task's params (at most)
RECHECK = 5.0  # seconds between chain reads of a task no event or owner decision touched
STEPS_AT_ONCE = 8  # tasks an agent steps (params, chain reads, notices) concurrently
MAX_CACHED_ANNOUNCEMENTS = 1024


def params_retry(tries: int) -> float:
    """Seconds before the next attempt to learn a task's params: a node usually knows them
    within a second of the posting, so the first retries come quickly, then back off."""
    return min(PARAMS_RETRY, 0.25 * 2**tries)


def owner_metrics() -> Metrics:
    """Every metric an owner agent exports (documented in docs/operations.md)."""
    m = Metrics()
    m.gauge("owner_tasks", "Tasks the agent decided on, by decision.")
    m.counter("owner_decisions_total", "Decisions taken, by decision.")
    m.counter("owner_sharings_total", "Rounds this agent secret-shared its data for.")
    m.counter("owner_deliveries_total", "Seat contributions acknowledged by their seat.")
    m.counter("owner_delivery_failures_total", "Delivery attempts that failed (retried).")
    m.gauge("owner_unacked_seats", "Stored seat contributions not yet acknowledged.")
    m.counter("owner_settlements_total", "Ended tasks over our datasets this agent settled.")
    m.gauge("peers", "Connected libp2p peers.")
    m.gauge("head_block", "Chain head seen at the last poll.")
    m.gauge("confirmed_block", "Newest block whose events were acted on.")
    m.counter("chain_poll_errors_total", "Chain polls that failed after RPC retries.")
    return m


class OwnerAgent:
    def __init__(
        self,
        cfg: OwnerConfig,
        account: LocalAccount,
        chain: Any,
        host: Transport,
        state: OwnerState,
        metrics: Metrics | None = None,
        check_committee: Callable[..., Any] = verified_committee,
    ) -> None:
        self.cfg = cfg
        self.account = account
        self.address = account.address
        self.chain = chain
        self.host = host
        self.state = state
        self.metrics = metrics or owner_metrics()
        self.check_committee = check_committee
        self.chain_id = chain.deployment.chain_id
        self.contract = chain.deployment.address
        self.follower: ChainFollower | None = None
        self.candidates: dict[int, float] = {}  # posted tasks whose params are not known yet
        self.param_tries: dict[int, int] = {}  # attempts so far per candidate
        self.announced: dict[int, bytes] = {}  # params heard on gossip (checked when used)
        self.not_mine: set[int] = set()
        self.delivering: set[tuple[int, int]] = set()
        self.verified: set[tuple[int, int]] = set()  # (task, round) committees checked here
        self.preshared: set[int] = set()  # tasks whose round 0 sharing was started early
        self.share_locks: dict[tuple[int, int], trio.Lock] = {}
        self.noticed: dict[int, tuple[str, str]] = {}
        self.touched: set[int] = set()  # tasks an event named since the last pass
        self.checked: dict[int, tuple[float, float]] = {}  # task -> (monotonic, decision.updated)
        self.wake = trio.Event()
        self.metrics_server: MetricsServer | None = None
        self.nursery: trio.Nursery | None = None
        self.steps = trio.CapacityLimiter(STEPS_AT_ONCE)  # tasks stepped concurrently

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        run = trio.to_thread.run_sync
        return await run(partial(fn, *args), abandon_on_cancel=True)  # type: ignore[call-arg]

    # ---- supervision --------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        if self.cfg.metrics_port is not None:
            token = trio.lowlevel.current_trio_token()

            def on_trio(fn: Callable[[], T]) -> Callable[[], T]:
                return lambda: trio.from_thread.run_sync(fn, trio_token=token)

            self.metrics.on_collect(on_trio(self._collect_metrics))
            self.metrics_server = MetricsServer(
                self.metrics, on_trio(self.status), self.cfg.metrics_port
            ).start()
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self._watch_chain)
                nursery.start_soon(self._listen_gossip)
                nursery.start_soon(self._reconcile_forever)
                nursery.start_soon(self._notices_forever)
                log.info(
                    "owner agent %s serving %d dataset(s) (%s) as peer %s",
                    self.address,
                    len(self.cfg.datasets),
                    ", ".join(d.name for d in self.cfg.datasets),
                    self.host.peer_id,
                )
                task_status.started()
        finally:
            if self.metrics_server is not None:
                self.metrics_server.stop()

    @property
    def metrics_url(self) -> str | None:
        return self.metrics_server.url if self.metrics_server else None

    def status(self) -> dict[str, Any]:
        """What /status serves: the decisions and deliveries at a glance."""
        decisions = self.state.decisions()
        by_state: dict[str, int] = {}
        for d in decisions:
            by_state[d.state] = by_state.get(d.state, 0) + 1
        f = self.follower
        return {
            "address": self.address,
            "peer_id": self.host.peer_id,
            "pid": os.getpid(),
            "metrics": self.metrics_url,
            "datasets": [d.name for d in self.cfg.datasets],
            "head_block": f.head if f else None,
            "confirmed_block": f.confirmed if f else None,
            "peers": len(self.host.connected_peers()),
            "decisions": by_state,
            "pending": [
                d.to_json() for d in decisions if d.state == PENDING_STATE and not d.closed
            ],  # fmt: skip
            "deliveries": self.state.delivery_counts(),
            "updated_at": int(time.time()),
        }

    def _collect_metrics(self) -> None:
        m = self.metrics
        counts: dict[str, float] = {}
        for d in self.state.decisions():
            counts[d.state] = counts.get(d.state, 0) + 1
        m.replace("owner_tasks", counts, "decision")
        dc = self.state.delivery_counts()
        m.set("owner_unacked_seats", dc["seats"] - dc["acked"])
        m.set("peers", len(self.host.connected_peers()))
        if self.follower is not None:
            m.set("head_block", self.follower.head)
            m.set("confirmed_block", self.follower.confirmed)

    # ---- chain and gossip ---------------------------------------------------------------

    async def _watch_chain(self) -> None:
        backoff = self.cfg.poll_interval
        while True:
            try:
                if self.follower is None:
                    head = await self.call(self.chain.latest_block)
                    start = max(self.chain.deployment.deploy_block, head - self.cfg.lookback)
                    self.follower = ChainFollower(self.chain, start, self.cfg.confirmations)
                batch = await self.call(self.follower.poll)
                backoff = self.cfg.poll_interval
            except ContractsError as e:
                backoff = min(backoff * 2, 10.0)
                self.metrics.inc("chain_poll_errors_total")
                log.warning("chain poll failed (%s); retrying in %.1f s", e, backoff)
                await trio.sleep(backoff)
                continue
            except Exception as e:  # an untyped library error must not stop the agent
                backoff = min(backoff * 2, 10.0)
                self.metrics.inc("chain_poll_errors_total")
                log.error("chain poll failed; retrying in %.1f s", backoff, exc_info=e)
                await trio.sleep(backoff)
                continue
            self.on_events(batch.events)
            await trio.sleep(backoff)

    def on_events(self, events: Iterable[Any]) -> None:
        """Posted tasks become candidates; anything else may move a task: reconcile now."""
        woke = False
        for ev in events:
            task_id = int(ev.args.get("task_id", 0))
            self.touched.add(task_id)
            if ev.name == "TaskPosted":
                if self.state.decision(task_id) is None and task_id not in self.not_mine:
                    self.candidates.setdefault(task_id, 0.0)
                woke = True
            elif ev.name in ("CommitteeFormed", "SeatClaimed", "TaskDisputed", "TaskFinalized",
                             "TaskRefunded", "DisputeResolved", "ResultReported"):  # fmt: skip
                woke = True
        if woke:
            self.wake.set()

    async def _listen_gossip(self) -> None:
        """Params announced on gossip (the owner needs them before the committee forms)."""
        try:
            rx = self.host.subscribe(TOPIC_TASKS)
        except NodeError as e:
            log.warning("no gossip (%s): params will be fetched from peers", e)
            return
        async for peer, data in rx:
            if b'"params"' not in data:
                continue
            try:
                ann = Announcement.parse(peer, data)
            except NodeError:
                continue
            if len(self.announced) >= MAX_CACHED_ANNOUNCEMENTS:
                self.announced.pop(next(iter(self.announced)))
            self.announced[ann.task_id] = ann.params
            self.wake.set()

    # ---- reconcile ----------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (ContractsError, NodeError, SchedulerError) as e:
                log.warning("reconcile: %s", e)
            except Exception as e:  # a bug must not stop the agent
                log.error("reconcile failed", exc_info=e)
            self.wake = trio.Event()
            with trio.move_on_after(self._next_pass()):
                await self.wake.wait()

    def _next_pass(self) -> float:
        """Seconds to the next reconcile pass: the poll interval, or sooner when a
        candidate's params are due for another try."""
        now, wait = time.monotonic(), self.cfg.poll_interval
        for task_id, tried in self.candidates.items():
            due = tried + params_retry(self.param_tries.get(task_id, 0)) - now
            wait = min(wait, max(due, 0.05))
        return wait

    async def reconcile(self) -> None:
        """One pass: learn candidates' params and decide; drive contributing tasks; close
        settled ones."""
        now = time.monotonic()
        # tasks step concurrently (bounded): one task's slow peers or RPCs must not delay
        # another's shares past its input timeout
        async with trio.open_nursery() as steps:
            for task_id, tried in list(self.candidates.items()):
                tries = self.param_tries.get(task_id, 0)
                if now - tried >= params_retry(tries) or task_id in self.announced:
                    self.candidates[task_id] = now
                    self.param_tries[task_id] = tries + 1
                    steps.start_soon(self._guarded, self.consider, task_id)
        touched, self.touched = self.touched, set()
        async with trio.open_nursery() as steps:
            for d in self.state.decisions(open_only=True):
                # a task's record is read from the chain (its logs) when an event named it,
                # the owner decided (approve/reject), or every RECHECK s: the chain is shared
                at, seen = self.checked.get(d.task_id, (0.0, 0.0))
                if d.task_id in touched or d.updated != seen or now - at >= RECHECK:
                    self.checked[d.task_id] = (now, d.updated)
                    steps.start_soon(self._guarded, self.advance, d)

    async def _guarded(self, step: Callable[..., Any], arg: Any) -> None:
        """One task's step; its failure (an RPC error, a bug) does not hold up the others."""
        try:
            async with self.steps:
                await step(arg)
        except (ContractsError, NodeError, SchedulerError) as e:
            log.warning("%s: %s", step.__name__, e)
        except Exception as e:
            log.error("%s failed", step.__name__, exc_info=e)

    async def _params_of(self, task_id: int, digest: bytes) -> TaskParams | None:
        raw = self.announced.get(task_id)
        if raw is not None:
            try:
                p = TaskParams.from_bytes(raw)
                if p.digest == digest:
                    return p
            except SchedulerError:
                pass
        try:
            return await fetch_params(self.host, task_id, digest)  # type: ignore[arg-type]
        except (NodeError, SchedulerError) as e:  # nobody knows them yet, or a peer sent junk
            log.debug("params of task %d: %s", task_id, e)
            return None

    async def consider(self, task_id: int) -> Decision | None:
        """Learn a posted task's params; if it names this owner, decide and record."""
        if self.state.decision(task_id) is not None:
            self._drop_candidate(task_id)
            return self.state.decision(task_id)
        info: TaskInfo = await self.call(self.chain.task_info, task_id)
        if info.status == TaskStatus.NONE or info.status in TERMINAL_STATUSES:
            self._drop_candidate(task_id)
            return None
        params = await self._params_of(task_id, info.params_digest)
        if params is None:
            return None  # retried on a later pass
        self._drop_candidate(task_id)
        self.announced.pop(task_id, None)
        if not params.is_owner(self.address) or not params.spec.uses_table:
            self.not_mine.add(task_id)
            return None
        # a DP task charged less on-chain than its noisy outputs compose to: never serve it
        undercharged = await self.call(budget_refusal, self.chain, info, params)
        # reads the owner's file (seconds for a large one): off the event loop
        chosen = await self.call(dataset_for, params, self.cfg.datasets, info)
        return self.decide_task(info, params, undercharged, chosen)

    def _drop_candidate(self, task_id: int) -> None:
        """The task's params are known, or it needs none from us: stop asking."""
        self.candidates.pop(task_id, None)
        self.param_tries.pop(task_id, None)

    def decide_task(
        self,
        info: TaskInfo,
        params: TaskParams,
        undercharged: str | None = None,
        chosen: tuple[Dataset | None, str] | None = None,
    ) -> Decision:
        """Dataset (``chosen``: dataset_for's answer, when already known), offer, policy:
        the decision, recorded once (never re-decided)."""
        ds, why = chosen if chosen is not None else dataset_for(params, self.cfg.datasets, info)
        canonical = params.canonical()
        if ds is not None and undercharged:
            ds, why = None, undercharged
        if ds is None:
            d = self.state.decide(info.task_id, "", REFUSED, why, info.requester,
                                  params.program, canonical)  # fmt: skip
        else:
            offer = build_offer(info, params, ds)
            recent = self.state.contributed_since(ds.name, time.time() - 3600)
            verdict = decide(ds.policy, offer, recent)
            d = self.state.decide(
                info.task_id, ds.name, OUTCOME_STATE[verdict.outcome], verdict.reason,
                info.requester, params.program, canonical,
            )  # fmt: skip
        self.metrics.inc("owner_decisions_total", decision=d.state)
        log.info(
            "task %d (%s, requester %s): %s%s",
            d.task_id, d.program, d.requester, d.state,
            f" dataset {d.dataset}" if d.dataset else "",
        )  # fmt: skip
        if d.reason:
            log.info("task %d: %s because %s", d.task_id, d.state, d.reason)
        self.wake.set()
        return d

    async def advance(self, d: Decision) -> None:
        """Drive one open task: close it if settled; share and deliver if contributing."""
        info: TaskInfo = await self.call(self.chain.task_info, d.task_id)
        if info.status in TERMINAL_STATUSES or info.status == TaskStatus.NONE:
            await self._send_notice(d)
            await self._settle(info)
            purged = self.state.close_task(d.task_id)
            self.checked.pop(d.task_id, None)
            self.preshared.discard(d.task_id)
            for rnd in ROUND_STATUS:
                self.verified.discard((d.task_id, rnd))
                self.share_locks.pop((d.task_id, rnd), None)
            log.info("task %d %s on chain: closed (%d stored seat contribution(s) deleted)",
                     d.task_id, info.status.name.lower(), purged)  # fmt: skip
            return
        await self._maybe_notice(d)
        if d.state not in CONTRIBUTING:
            return
        if info.status == TaskStatus.OPEN and d.task_id not in self.preshared:
            self.preshared.add(d.task_id)
            assert self.nursery is not None
            self.nursery.start_soon(self._preshare, d, info)
        for rnd, status in ROUND_STATUS.items():
            if info.status == status and (d.task_id, rnd) not in self.delivering:
                self.delivering.add((d.task_id, rnd))
                assert self.nursery is not None
                self.nursery.start_soon(self._contribute_round, d, rnd)

    async def _settle(self, info: TaskInfo) -> None:
        """Pull payment for a task over one of our datasets once it ended: settle its
        datasets (the owners' prices to their credits, or the requester's refund). Anyone may
        settle, once; if someone did already, there is nothing left to do."""
        ours = {ds.dataset_id for ds in self.cfg.datasets if ds.dataset_id}
        if not ours & {e.dataset_id for e in info.datasets or ()}:
            return
        try:
            if not await self.call(self.chain.pending_datasets, info.task_id):
                return
            await self.call(self.chain.settle_datasets, info.task_id)
        except ContractsError as e:  # settled by someone else meanwhile, or a refusal
            log.info("task %d: datasets not settled here: %s", info.task_id, e)
            return
        self.metrics.inc("owner_settlements_total")
        log.info("task %d %s: datasets settled", info.task_id, info.status.name.lower())

    async def _contribute_round(self, d: Decision, rnd: int) -> None:
        try:
            await self.contribute_round(d, rnd)
        except (ContractsError, NodeError, SchedulerError) as e:
            log.warning("task %d round %d: %s (retrying)", d.task_id, rnd, e)
        except Exception as e:  # a bug or an untyped library error: this round only
            log.error("task %d round %d failed (retrying)", d.task_id, rnd, exc_info=e)
        finally:
            self.delivering.discard((d.task_id, rnd))

    async def contribute_round(self, d: Decision, rnd: int) -> bool:
        """Share once (stored before anything is sent; round 0's may be stored before the
        committee forms, see :meth:`_preshare`), verify the committee, and deliver until
        every seat acked. Nothing is sent to a committee this process has not verified."""
        task_id = d.task_id
        stored = self.state.sharing(task_id, rnd)
        if stored and all(s.acked_at is not None for s in stored):
            return True
        raw = self.state.params(task_id)
        if raw is None:
            return False
        params = TaskParams.from_bytes(raw)
        # a share is sent only to a verified committee: one sent (by an earlier process)
        # means this round's committee passed the check
        sent = any(s.acked_at is not None or s.attempts for s in stored)
        if (task_id, rnd) not in self.verified and not sent:
            try:
                await self.call(self.check_committee, self.chain, task_id, rnd, params.owners,
                                self.cfg.poll_interval)  # fmt: skip
            except SeatClaimsOpen:
                return False  # the claim period is open: the next pass tries again
            except CommitteeNotRanked as e:
                self._refuse(task_id, f"the committee is not the ranked one: {e}")
                return False
            self.verified.add((task_id, rnd))
        if not stored:
            if rnd:
                m = len(await self.call(self._seats, task_id, rnd))
            else:
                m = (await self.call(self.chain.task_info, task_id)).committee_size
            stored = await self._share(d, rnd, params, m)
            if not stored:
                return False
        elif sent:
            log.info("task %d round %d: resuming the stored sharing (%d of %d seats acked)",
                     task_id, rnd, sum(s.acked_at is not None for s in stored),
                     len(stored))  # fmt: skip

        async def seat_peers() -> list[str]:
            seats = await self.call(self._seats, task_id, rnd)
            return [await self.call(self._peer_of, a) for a in seats]

        async def still_open() -> bool:
            st = await self.call(self.chain.task_status, task_id)
            return bool(st == ROUND_STATUS[rnd])

        done = await deliver_round(self.host, self.state, task_id, rnd, seat_peers, still_open,
                                   self.cfg.retry_interval, self.metrics)  # fmt: skip
        if done:
            log.info("task %d round %d: every seat acknowledged the shares", task_id, rnd)
            self.wake.set()
        return done

    async def _share(self, d: Decision, rnd: int, params: TaskParams, m: int) -> list[SeatDelivery]:
        """The round's ONE sharing for its m seats: the stored one, or encoded, shared,
        signed and stored now (nothing is sent here). Empty if the task was refused."""
        task_id = d.task_id
        async with self._share_lock(task_id, rnd):
            stored = self.state.sharing(task_id, rnd)
            if stored:
                return stored
            ds = next((x for x in self.cfg.datasets if x.name == d.dataset), None)
            if ds is None:
                self._refuse(task_id, f"dataset {d.dataset!r} is no longer configured")
                return []
            try:
                encoded = await self.call(params.encode_table, ds.file, self.address)
            except SchedulerError as e:
                self._refuse(task_id, f"dataset {ds.name}: {e}")
                return []
            contributions = await self.call(
                signed_contributions,
                self.chain_id, self.contract, self.account, task_id, params, encoded, m, rnd,
            )  # fmt: skip
            rows = [c.to_bytes() for c in contributions]
            stored = self.state.record_sharing(task_id, rnd, rows)
            self.metrics.inc("owner_sharings_total")
            # tests read this line: exactly one per task and round
            log.info("task %d round %d: sharing recorded (%d seats, %d values of %s)",
                     task_id, rnd, m, len(encoded), ds.name)  # fmt: skip
            return stored

    def _share_lock(self, task_id: int, rnd: int) -> trio.Lock:
        return self.share_locks.setdefault((task_id, rnd), trio.Lock())

    async def _preshare(self, d: Decision, info: TaskInfo) -> None:
        """Round 0's sharing stored while the committee is still forming (it depends only
        on the committee's size): at formation the shares go out at once, instead of after
        reading and encoding the dataset. Nothing is sent until the committee is verified."""
        try:
            raw = self.state.params(d.task_id)
            if raw is not None and not self.state.sharing(d.task_id, 0):
                await self._share(d, 0, TaskParams.from_bytes(raw), info.committee_size)
        except (ContractsError, NodeError, SchedulerError) as e:
            log.info(
                "task %d: sharing ahead of the committee failed (%s); at formation", d.task_id, e
            )
        except Exception as e:  # a bug: the round shares at formation instead
            log.error("task %d: sharing ahead of the committee failed", d.task_id, exc_info=e)

    def _seats(self, task_id: int, rnd: int) -> list[str]:
        return list(self.chain.rerun_seats(task_id) if rnd else self.chain.seats(task_id))

    def _peer_of(self, address: str) -> str:
        return str(self.chain.node_info(address).peer_id)

    def _refuse(self, task_id: int, reason: str) -> None:
        d = self.state.refuse(task_id, reason)
        self.metrics.inc("owner_decisions_total", decision=d.state)
        log.warning("task %d: %s (%s)", task_id, d.state, d.reason)

    # ---- notices ------------------------------------------------------------------------

    def notice_for(self, d: Decision) -> OwnerNotice:
        state, seq = d.state, int(d.updated * 1000)
        rows = self.state.sharing(d.task_id, 0)
        if d.state in CONTRIBUTING and rows and all(r.acked_at for r in rows):
            state = "delivered"
            seq = max(seq, int(max(r.acked_at or 0 for r in rows) * 1000))
        return OwnerNotice(self.chain_id, self.contract, d.task_id, self.address, state,
                           d.reason, seq).signed(self.account)  # fmt: skip

    async def _maybe_notice(self, d: Decision) -> None:
        n = self.notice_for(d)
        if self.noticed.get(d.task_id) != (n.state, n.reason):
            await self._send(n)

    async def _send_notice(self, d: Decision) -> None:
        await self._send(self.notice_for(d))

    async def _send(self, n: OwnerNotice) -> None:
        """Gossip the notice and hand it to every connected peer directly."""
        data = n.to_bytes()
        sent = 0

        async def one(peer: str) -> None:
            nonlocal sent
            try:
                check_reply(peer, await self.host.request(peer, PROTO_NOTICE, data, timeout=5))
                sent += 1
            except (NodeError, P2PError) as e:
                log.debug("notice to %s: %s", peer, e)

        with trio.move_on_after(10):
            try:
                await self.host.publish(TOPIC_TASKS, data)
            except NodeError as e:
                log.debug("notice gossip: %s", e)
            async with trio.open_nursery() as peers:  # a dead peer must not delay the rest
                for peer in self.host.connected_peers():
                    peers.start_soon(one, peer)
        if sent:
            fresh = self.noticed.get(n.task_id) != (n.state, n.reason)
            self.noticed[n.task_id] = (n.state, n.reason)
            (log.info if fresh else log.debug)(
                "task %d: notice %s sent to %d peer(s)", n.task_id, n.state, sent
            )

    async def _notices_forever(self) -> None:
        """Re-send the notices of open tasks (a restarted node has forgotten them)."""
        while True:
            await trio.sleep(self.cfg.notice_interval)
            for d in self.state.decisions(open_only=True):
                try:
                    await self._send_notice(d)
                except Exception as e:  # one notice's failure must not stop the agent
                    log.error("task %d: notice failed", d.task_id, exc_info=e)
