"""What the explorer shows, read from the chain (through the SDK's read-only client) and the
nodes' and owner agents' local status endpoints; recomputed once per new block.

Read-only: nothing here holds a key or sends a transaction.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from dnode.cli.explorer.charts import chart_for
from dnode.cli.sdk.client import Client
from dnode.cli.sdk.errors import _errors
from dnode.cli.sdk.tasks import REFUND_REASONS, timeline, why_waiting
from dnode.contracts.client import TERMINAL_STATUSES, TaskInfo, TaskStatus
from dnode.scheduler.programs import TaskParams, program_by_id

log = logging.getLogger("dnode.explorer")

MAX_TASKS = 200  # the newest tasks listed (each is one eth_getLogs)
NOTE = {
    TaskStatus.OPEN: "waiting for its committee",
    TaskStatus.COMPUTING: "committee seated; inputs and computation",
    TaskStatus.REPORTED: "result reported; in challenge window",
    TaskStatus.FINALIZED: "finalized; rewards credited",
    TaskStatus.REFUNDED: "refunded",
    TaskStatus.DISPUTED: "disputed; waiting for a re-execution committee",
    TaskStatus.RECOMPUTING: "disputed; re-execution committee computing",
    TaskStatus.OVERTURNED: "dispute upheld: the re-executed result is final",
}
#: the state machine's steps, in order, as the timeline shows them
STEPS = ["posted", "seated", "inputs", "computing", "reported", "challenged", "final"]


def _get_json(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 urls
            out = json.loads(r.read())
        return out if isinstance(out, dict) else None
    except (OSError, ValueError):
        return None


class Explorer:
    """The explorer's model: a snapshot per block, plus the task params and owner notices the
    network serves (fetched in the background through ``bootstrap``, when given)."""

    def __init__(
        self,
        client: Client,
        *,
        status_urls: Sequence[str] = (),
        bootstrap: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.chain = client.chain
        self.status_urls = [u.rstrip("/") for u in status_urls]
        self.bootstrap = list(bootstrap)
        self.head = -1
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._infos: dict[int, TaskInfo] = {}
        self.params: dict[int, TaskParams] = {}
        self.notices: dict[int, list[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- the background followers ----------------------------------------------------------

    def start(self, poll: float = 0.5) -> Explorer:
        """Follow the chain head (and, with bootstrap, the network) in daemon threads."""
        self.refresh()
        self._spawn(self._follow, poll)
        if self.bootstrap:
            self._spawn(self._network, 2.0)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _spawn(self, fn: Any, every: float) -> None:
        t = threading.Thread(target=fn, args=(every,), daemon=True, name=f"explorer-{fn.__name__}")
        t.start()
        self._threads.append(t)

    def _follow(self, poll: float) -> None:
        while not self._stop.wait(poll):
            try:
                if self.chain.latest_block() != self.head:
                    self.refresh()
            except Exception as e:  # noqa: BLE001 - keep serving the last snapshot
                log.warning("explorer: cannot read the chain: %s", e)

    def _network(self, every: float) -> None:
        """Public params (digest-checked) and owners' signed notices, from the nodes."""
        from dnode.cli.sdk.run import run_trio
        from dnode.node import peer_client

        async def fetch(todo: list[TaskInfo]) -> None:
            async with peer_client.ephemeral_host(self.bootstrap) as host:
                for info in todo:
                    tid = info.task_id
                    if tid not in self.params:
                        try:
                            got = await peer_client.fetch_params(host, tid, info.params_digest)
                            self.params[tid] = got
                        except _errors():
                            pass
                    if info.status not in TERMINAL_STATUSES or tid not in self.notices:
                        try:
                            found = await peer_client.fetch_notices(host, tid)
                        except _errors():
                            continue
                        self.notices[tid] = [
                            {"owner": n.owner, "state": n.state, "reason": n.reason,
                             "at": n.seq / 1000}
                            for n in found
                        ]  # fmt: skip

        while not self._stop.wait(every):
            todo = [
                i for i in list(self._infos.values())
                if i.task_id not in self.params or i.status not in TERMINAL_STATUSES
                or i.task_id not in self.notices
            ]  # fmt: skip
            if not todo:
                continue
            try:
                run_trio(fetch, todo)
            except Exception as e:  # noqa: BLE001 - the network is optional
                log.info("explorer: cannot reach the nodes: %s", e)

    # ---- snapshots ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the chain once: tasks, datasets, nodes (one snapshot per head block)."""
        head = self.chain.latest_block()
        n = self.chain.task_count()
        infos = {}
        for tid in range(max(1, n - MAX_TASKS + 1), n + 1):
            old = self._infos.get(tid)
            if old is not None and old.status in TERMINAL_STATUSES:
                infos[tid] = old  # final: it does not change any more
            else:
                infos[tid] = self.chain.task_info(tid)
        with self._lock:
            self._infos = infos
            self.head = head
            self._cache = {}

    def _cached(self, key: str, build: Any) -> Any:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            self._cache[key] = value
        return value

    def overview(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "chain_id": self.client.deployment.chain_id,
            "contract": self.client.deployment.address,
            "tasks": len(self._infos),
            "time": self.chain.block_timestamp(),
        }

    def tasks(self) -> list[dict[str, Any]]:
        return self._cached("tasks", lambda: [self._task_row(i) for i in
                                              sorted(self._infos.values(),
                                                     key=lambda i: -i.task_id)])  # fmt: skip

    def _params_of(self, tid: int) -> TaskParams | None:
        p = self.params.get(tid)
        if p is None:
            p = self.client.known_params(tid)
            if p is not None and tid in self._infos and p.digest == self._infos[tid].params_digest:
                self.params[tid] = p
            else:
                p = None
        return p

    def _task_row(self, info: TaskInfo) -> dict[str, Any]:
        prog = program_by_id(info.program_id)
        reason = ""
        if info.status == TaskStatus.REFUNDED:
            reason = REFUND_REASONS.get(info.refund_reason, info.refund_reason)
        return {
            "task_id": info.task_id,
            "program": prog.name if prog else "0x" + info.program_id.hex()[:12],
            "status": info.status.name.lower(),
            "note": NOTE.get(info.status, ""),
            "reason": reason,
            "requester": info.requester,
            "reward": str(info.reward),
            "reward_eth": info.reward / 1e18,
            "committee": f"{info.seats_taken}/{info.committee_size}",
            "posted_at": info.posted_at,
            "datasets": [d.dataset_id for d in info.datasets],
        }

    def task(self, tid: int) -> dict[str, Any] | None:
        info = self._infos.get(tid)
        if info is None:
            return None
        return self._cached(f"task-{tid}-{len(self.notices.get(tid, []))}-{tid in self.params}",
                            lambda: self._task_detail(info))  # fmt: skip

    def _task_detail(self, info: TaskInfo) -> dict[str, Any]:
        tid = info.task_id
        events = timeline(self.chain, tid)
        notices = self.notices.get(tid, [])
        row = self._task_row(info)
        row["steps"] = self._steps(info, events, notices)
        row["events"] = events
        row["notices"] = notices
        row["declines"] = [e for e in events if e["event"] == "SeatDeclined"]
        row["seats"] = list(info.committee)
        row["draws"] = list(info.draws)
        row["seat_deadline"] = info.seat_deadline
        row["report_deadline"] = info.report_deadline
        row["result"] = None
        row["chart"] = None
        row["waiting"] = why_waiting(self.chain, info)[0] if info.status == TaskStatus.OPEN else ""
        params = self._params_of(tid)
        row["params"] = params.to_dict() if params is not None else None
        if info.status in (TaskStatus.REPORTED, TaskStatus.FINALIZED, TaskStatus.OVERTURNED):
            try:
                r = self.client.result(tid, params) if not (params and params.result_key) else None
            except _errors() as e:
                row["result_error"] = str(e)
                r = None
            if r is not None:
                row["result"] = {
                    "named": r.named,
                    "rows": r.rows(),
                    "count": r.count,
                    "shape": list(r.shape),
                    "labels": [list(a) for a in r.labels],
                    "digest": r.digest,
                    "final": r.final,
                    "line": r.line,
                }
                row["chart"] = chart_for(r, params)
            elif params is not None and params.result_key:
                row["result_error"] = "private result: sealed to the requester"
        return row

    def _steps(
        self, info: TaskInfo, events: list[dict[str, Any]], notices: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each step of the state machine: done, current or to come, with when and why."""
        seen: dict[str, dict[str, Any]] = {}
        for e in events:
            seen.setdefault(e["step"], e)
        st = info.status
        delivered = [n for n in notices if n["state"] in ("delivered", "approved")]
        done = {
            "posted": True,
            "seated": "seated" in seen,
            "inputs": bool(delivered) or "reported" in seen,
            "computing": "seated" in seen and ("reported" in seen or st == TaskStatus.COMPUTING),
            "reported": "reported" in seen,
            "challenged": "challenged" in seen,
            "final": st in TERMINAL_STATUSES,
        }
        out = []
        current_set = False
        for name in STEPS:
            if name == "challenged" and not done["challenged"]:
                continue  # only a disputed task has this step
            ev = seen.get(name)
            state = "done" if done[name] else "todo"
            if state == "todo" and not current_set and st not in TERMINAL_STATUSES:
                state, current_set = "current", True
            detail = ""
            if name == "final":
                label = {TaskStatus.REFUNDED: "refunded", TaskStatus.OVERTURNED: "overturned"}.get(
                    st, "finalized")  # fmt: skip
                ev = seen.get("refunded") or seen.get("finalized") or ev
                if st == TaskStatus.REFUNDED:
                    detail = REFUND_REASONS.get(info.refund_reason, info.refund_reason)
            else:
                label = name
            if name == "seated" and ev is not None:
                pairs = zip(ev.get("members", []), ev.get("draws", []), strict=False)
                detail = ", ".join(f"{m[:10]}… draw {d}" for m, d in pairs)
            if name == "inputs":
                detail = "; ".join(f"owner {n['owner'][:10]}… {n['state']}" +
                                   (f" ({n['reason']})" if n["reason"] else "")
                                   for n in notices)  # fmt: skip
            out.append({"step": name, "label": label, "state": state,
                        "block": ev["block"] if ev else None, "time": ev["time"] if ev else None,
                        "detail": detail})  # fmt: skip
        return out

    def datasets(self) -> list[dict[str, Any]]:
        return self._cached("datasets", self._datasets)

    def _datasets(self) -> list[dict[str, Any]]:
        rows = self.client.datasets(include_all=True)
        ledger: dict[int, list[dict[str, Any]]] = {r["dataset_id"]: [] for r in rows}
        if rows:
            for e in self.chain.events(self.client.deployment.deploy_block):
                if e.name != "TaskDatasets":
                    continue
                tid = int(e.args["task_id"])
                info = self._infos.get(tid)
                for ds, cost, price in zip(e.args["dataset_ids"], e.args["costs"],
                                           e.args["prices"], strict=True):  # fmt: skip
                    ledger.setdefault(int(ds), []).append({
                        "task_id": tid, "requester": e.args["requester"],
                        "cost": int(cost) / 1e6, "price": str(price), "block": e.block_number,
                        "status": info.status.name.lower() if info else "?",
                    })  # fmt: skip
        for r in rows:
            r["ledger"] = ledger.get(r["dataset_id"], [])
            r["price"] = str(r["price"])
        return rows

    def nodes(self) -> list[dict[str, Any]]:
        return self._cached("nodes", self._nodes)

    def _nodes(self) -> list[dict[str, Any]]:
        addrs: list[str] = []
        slashes: dict[str, list[int]] = {}
        for e in self.chain.events(self.client.deployment.deploy_block):
            if e.name == "NodeRegistered" and e.args["node"] not in addrs:
                addrs.append(e.args["node"])
            elif e.name == "Slashed":
                slashes.setdefault(e.args["node"], []).append(int(e.args["amount"]))
        seats: dict[str, int] = {}
        for info in self._infos.values():
            if info.status not in TERMINAL_STATUSES:
                for m in info.committee:
                    seats[m] = seats.get(m, 0) + 1
        live = {}
        for url in self.status_urls:
            s = _get_json(url + "/status")
            if s and s.get("address"):
                live[str(s["address"]).lower()] = s
        out = []
        for a in addrs:
            ni = self.chain.node_info(a)
            terms = self.chain.node_terms(a)
            st = live.get(a.lower())
            out.append({
                "address": a, "peer_id": ni.peer_id, "stake": str(ni.stake),
                "stake_eth": ni.stake / 1e18, "locked_eth": ni.locked / 1e18,
                "slots": self.chain.slots_owned(a), "seats": seats.get(a, 0),
                "price_eth": terms.price / 1e18 if terms.declared else None,
                "capacity": terms.capacity if terms.declared else None,
                "slashes": len(slashes.get(a, [])),
                "slashed_eth": sum(slashes.get(a, [])) / 1e18,
                "active": self.chain.is_active(a),
                "status": {k: st.get(k) for k in ("peers", "tasks", "head_block")} if st else None,
            })  # fmt: skip
        return out

    def owners(self) -> list[dict[str, Any]]:
        """The owner agents whose status endpoints were given (decisions, deliveries)."""
        out = []
        for url in self.status_urls:
            s = _get_json(url + "/status")
            if s and "decisions" in s:
                out.append(s)
        return out

    def wait_head(self, after: int, timeout: float) -> int:
        """The head block once it is past ``after`` (or at ``timeout``)."""
        end = time.monotonic() + timeout
        while self.head <= after and time.monotonic() < end and not self._stop.is_set():
            time.sleep(0.1)
        return self.head
