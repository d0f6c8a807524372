#!/usr/bin/env python
"""Network benchmark (issue 8, part 2): task throughput, the chain's own ceiling, gossip latency.

Everything is real processes on this machine (no mocks): the embedded devnet (``dnode chain``),
``dnode start`` node processes, and MPyC party processes spawned by the nodes. The requester and
the data owner are this process, driving the library API (ChainClient, peer_client) with several
tasks in flight, so Python start-up of a CLI per request does not dominate.

Phases, in one run:

1. **Throughput** (``--nodes`` nodes, default 5): for ``--window`` seconds keep ``--inflight``
   small ``mpc.sum`` tasks (committee 3, one data owner, 3 values) in flight; count tasks whose
   result is attested (ResultReported) inside the window. Where the time goes comes from chain
   events (seen by a 0.2 s poller here), this process's clock and the nodes' logs.
2. **Chain ceiling** on the *same* devnet process once the nodes are stopped: plain signed
   transfers (eth_sendRawTransaction + receipt) from one client and from ``--threads`` clients,
   pre-signed post_task transactions (the EVM cost of a task transaction), and post_task through
   ChainClient (the full client path nodes use: balance, fees, estimate, nonce, send, receipt).
   Transactions per task are counted from the chain events of the completed tasks (distinct
   transaction hashes), so a contract redesign with fewer transactions shows up by itself.
   chain-bound max tasks/s = ceiling tx/s / transactions per task.
3. **Gossip** (``--gossip-nodes`` nodes, default 20, a fresh devnet): post a task, announce it to
   ONE bootstrap node, and read from each node's log when it first accepted the task's params
   (``task N: params known (via ...)``); latency = that time - the time the announce was sent.

With ``--netlab`` (root), the same phases run again across hosts: a fresh lab of
scripts/netlab.py puts the chain, the requester (this driver, also the tasks' data owner) and
every node on its own network namespace, ``--rtt`` ms apart (± ``--jitter``) with ``--loss``
per packet each way; the report gives both runs and ``lab_vs_loopback`` side by side.

Usage (from the repository root)::

    python scripts/bench_network.py            # full: 60 s window, 20 gossip nodes (~8 min)
    python scripts/bench_network.py --quick    # ~3-4 min: 15 s window, 8 gossip nodes
    python scripts/bench_network.py --json     # one JSON document on stdout
    python scripts/bench_network.py --quick --netlab --rtt 50 --jitter 5 --loss 0.01 --json

Absolute rates on a shared 2-core machine are noisy; compare the ratios, which come from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not an installed copy
sys.path.insert(0, str(ROOT / "scripts"))

import requests  # noqa: E402
import trio  # noqa: E402
from bench_data import machine_info  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402

from dnode.cli.devcluster import DevCluster, NodeProc, Placement  # noqa: E402
from dnode.contracts.client import ChainClient, connect  # noqa: E402
from dnode.contracts.manifest import Deployment  # noqa: E402
from dnode.node.aggregation import MinAggregation  # noqa: E402
from dnode.node.peer_client import (  # noqa: E402
    announce_via,
    contribute_via,
    ephemeral_host,
)
from dnode.oracle.reader import read_result  # noqa: E402
from dnode.scheduler.programs import TaskParams, get_program  # noqa: E402

PROGRAM = "mpc.sum"
SINGLE_OWNER = MinAggregation(owners=1, values=1).to_extra()
COMMITTEE = 3
REWARD = 3 * 10**15
FAR = 10**7  # deadline horizon in chain seconds: the devnet stamps each block >= 1 s after its
# parent, so under load chain time runs far ahead of the wall clock (see docs/benchmarks.md)
LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ [\w.]+: task (\d+): (.*)$")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- small helpers -------------------------------------------------------------------------


def pct(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no data."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def r3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process including its reaped children (MPyC parties of a node)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = stat.rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15]) / CLK_TCK  # utime stime cutime cstime


def system_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def parse_log(path: Path) -> list[tuple[float, int, str]]:
    """(epoch seconds, task id, message) of every ``task N: ...`` line of a node log."""
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = LOG_RE.match(line)
        if m:
            t = time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + int(m[2]) / 1000
            out.append((t, int(m[3]), m[4]))
    return out


def start_nodes(
    cluster: DevCluster, names: list[str], stake: str, extra: list[str], parallel: int
) -> list[NodeProc]:
    """The first node alone (everyone bootstraps from it), then the rest a few at a time."""
    first = cluster.start_node(names[0], stake=stake, extra_args=extra)
    boot = cluster.bootstrap()
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        rest = list(
            pool.map(
                lambda n: cluster.start_node(n, stake=stake, bootstrap=boot, extra_args=extra),
                names[1:],
            )
        )
    return [first, *rest]


def chain_client(cluster: DevCluster, key: str | None = None) -> ChainClient:
    w3 = connect(cluster.rpc_url, timeout=60)
    acct = Account.from_key(key) if key else None
    return ChainClient(w3, Deployment.load(cluster.manifest), acct, receipt_timeout=120)


def post(chain: ChainClient, params: TaskParams) -> int:
    prog = get_program(params.program)
    now = max(int(time.time()), chain.block_timestamp())
    return chain.post_task(
        prog.program_id,
        params.digest,
        capability=prog.capability_bit,
        committee_size=COMMITTEE,
        seat_deadline=now + FAR,
        report_deadline=now + 2 * FAR,
        reward=REWARD,
    )


# ---- phase 1: sustained task throughput ----------------------------------------------------


@dataclass
class TaskRec:
    task_id: int
    values: list[int] = field(default_factory=list)
    t_start: float = 0.0  # post sent
    t_posted: float = 0.0  # post receipt
    t_announced: float = 0.0
    t_formed: float = 0.0  # CommitteeFormed seen by the poller
    t_delivered: float = 0.0  # shares accepted by every seat
    t_reported: float = 0.0  # ResultReported seen by the poller
    t_finalized: float = 0.0
    blocks: dict[str, int] = field(default_factory=dict)
    txs: set[str] = field(default_factory=set)
    finalize_tx: str = ""
    refunded: bool = False
    error: str = ""
    formed: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)


class Driver:
    """Requester + data owner in this process: posts, announces, shares, watches the chain."""

    def __init__(
        self,
        chain: ChainClient,
        owner: LocalAccount,
        boot_addr: str,
        boot_peer: str,
        peer_of: dict[str, str],
        poll: float = 0.2,
    ) -> None:
        self.chain = chain
        self.owner = owner
        self.boot_addr, self.boot_peer = boot_addr, boot_peer
        self.peer_of = {a.lower(): p for a, p in peer_of.items()}
        self.poll = poll
        self.recs: dict[int, TaskRec] = {}
        self.params = TaskParams(
            program=PROGRAM,
            owners=(owner.address,),
            input_timeout=60,
            max_rows=1024,
            extra=SINGLE_OWNER,  # a benchmark's own synthetic data: one owner is fine
        )
        self.rng = random.Random(8)
        self.first_block = 0
        self.errors: list[str] = []

    def rec(self, task_id: int) -> TaskRec:
        r = self.recs.get(task_id)
        if r is None:
            r = self.recs[task_id] = TaskRec(task_id)
        return r

    async def watch(self) -> None:
        nxt = self.first_block
        while True:
            head = await trio.to_thread.run_sync(self.chain.latest_block)
            if head >= nxt:
                evs = await trio.to_thread.run_sync(self.chain.events, nxt, head)
                now = time.time()
                for ev in evs:
                    if "task_id" not in ev.args:
                        continue
                    r = self.rec(int(ev.args["task_id"]))
                    r.txs.add(ev.tx_hash)
                    r.blocks.setdefault(ev.name, ev.block_number)
                    if ev.name == "CommitteeFormed":
                        r.t_formed = r.t_formed or now
                        r.formed.set()
                    elif ev.name == "ResultReported":
                        r.t_reported = r.t_reported or now
                        r.done.set()
                    elif ev.name == "TaskFinalized":
                        r.t_finalized = r.t_finalized or now
                        r.finalize_tx = ev.tx_hash
                    elif ev.name == "TaskRefunded":
                        r.refunded = True
                        r.formed.set()
                        r.done.set()
                nxt = head + 1
            await trio.sleep(self.poll)

    async def one_task(self, host: Any, deadline: float) -> TaskRec | None:
        values = [self.rng.randrange(0, 100) for _ in range(3)]
        t0 = time.time()
        task_id = await trio.to_thread.run_sync(post, self.chain, self.params)
        r = self.rec(task_id)
        r.values, r.t_start, r.t_posted = values, t0, time.time()
        try:
            ok = await announce_via(host, [self.boot_peer], task_id, self.params)
            if not ok:
                raise RuntimeError("announcement not accepted")
            r.t_announced = time.time()
            with trio.fail_after(max(5.0, deadline - trio.current_time())):
                await r.formed.wait()
            if r.refunded:
                raise RuntimeError("refunded before the committee formed")
            seats = await trio.to_thread.run_sync(self.chain.seats, task_id)
            peers = [self.peer_of[a.lower()] for a in seats]
            dep = self.chain.deployment
            await contribute_via(
                host,
                dep.chain_id,
                dep.address,
                self.owner,
                task_id,
                self.params,
                self.params.encode_values([str(v) for v in values]),
                peers,
            )
            r.t_delivered = time.time()
            with trio.fail_after(max(5.0, deadline - trio.current_time())):
                await r.done.wait()
        except Exception as e:  # noqa: BLE001 - recorded; the benchmark goes on
            r.error = f"{type(e).__name__}: {e}"
            self.errors.append(f"task {task_id}: {r.error}")
        return r

    async def run(
        self,
        window: float,
        inflight: int,
        warmup: int,
        drain: float,
        sample: Callable[[], dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the window; ``sample()`` (in a thread) at its start and end is returned."""
        self.first_block = await trio.to_thread.run_sync(self.chain.latest_block)
        edges: list[dict[str, Any]] = []
        async with ephemeral_host([self.boot_addr]) as host, trio.open_nursery() as nursery:
            nursery.start_soon(self.watch)
            for _ in range(warmup):  # connections, caches, first MPyC start: not measured
                await self.one_task(host, trio.current_time() + 120)
            edges.append(await trio.to_thread.run_sync(sample))
            stop_at = trio.current_time() + window

            async def worker() -> None:
                while trio.current_time() < stop_at:
                    await self.one_task(host, stop_at + drain)

            async def end_edge() -> None:
                await trio.sleep_until(stop_at)
                edges.append(await trio.to_thread.run_sync(sample))

            async with trio.open_nursery() as workers:
                workers.start_soon(end_edge)
                for _ in range(inflight):
                    workers.start_soon(worker)
            nursery.cancel_scope.cancel()
        return edges[0], edges[1]


def node_phases(nodes: list[NodeProc], task_ids: set[int]) -> dict[str, Any]:
    """Per-task phase times from the nodes' own logs (all nodes log with ms timestamps)."""
    ev: dict[int, dict[str, list[float]]] = {}
    for n in nodes:
        for t, tid, msg in parse_log(n.log_path):
            if tid not in task_ids:
                continue
            d = ev.setdefault(tid, {})
            # markers, not prefixes: round-aware lines read "round 0 committee formed, ..."
            for key, marker in (
                ("params", "params known"),
                ("offered", "offering to join"),
                ("formed", "committee formed"),
                ("mpc_start", "MPC party"),
                ("mpc_done", "MPC done"),
                ("reported", "result reported"),
                ("finalized", ": finalized"),
            ):
                if marker in (": " + msg if marker.startswith(":") else msg):
                    d.setdefault(key, []).append(t)
    gaps: dict[str, list[float]] = {
        k: []
        for k in (
            "params_to_last_join_offer",
            "committee_seen_to_last_mpc_start",
            "mpc_party_run",
            "last_mpc_done_to_reported",
        )
    }
    for d in ev.values():
        if d.get("params") and d.get("offered") and len(d["offered"]) >= COMMITTEE:
            offers = sorted(d["offered"])[:COMMITTEE]  # the first m offers can form it
            gaps["params_to_last_join_offer"].append(max(offers) - min(d["params"]))
        if d.get("formed") and d.get("mpc_start"):
            gaps["committee_seen_to_last_mpc_start"].append(max(d["mpc_start"]) - min(d["formed"]))
        if d.get("mpc_start") and d.get("mpc_done") and len(d["mpc_done"]) == len(d["mpc_start"]):
            runs = [
                b - a for a, b in zip(sorted(d["mpc_start"]), sorted(d["mpc_done"]), strict=True)
            ]
            gaps["mpc_party_run"].extend(runs)
        if d.get("mpc_done") and d.get("reported"):
            gaps["last_mpc_done_to_reported"].append(min(d["reported"]) - max(d["mpc_done"]))
    return {k: {"median_s": r3(med(v)), "n": len(v)} for k, v in gaps.items()}


def run_throughput(a: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict:
    cluster = DevCluster(
        workdir / "throughput",
        challenge_period=a.challenge_period,
        accounts=a.nodes + a.threads + 6,
        say=say,
        placement=a.placement,
    )
    out: dict[str, Any] = {"nodes": a.nodes, "window_s": a.window, "inflight": a.inflight}
    with cluster.running():
        extra = ["--max-tasks", str(a.max_tasks), "--mpc-timeout", str(a.mpc_timeout)]
        names = [f"node-{i + 1}" for i in range(a.nodes)]
        nodes = start_nodes(cluster, names, a.stake, extra, a.start_parallel)
        chain = chain_client(cluster, cluster.dev_key())
        owner = Account.from_key(cluster.dev_key())
        peer_of = {n.member.address: n.peer_id for n in nodes}
        drv = Driver(chain, owner, nodes[0].addrs[0], nodes[0].peer_id, peer_of)
        time.sleep(a.settle)
        say(f"throughput: {a.window:g} s window, {a.inflight} tasks in flight, {a.nodes} nodes")

        chain_pid = cluster.chain_proc.pid if cluster.chain_proc else None
        node_pids = [n.proc.pid for n in nodes]

        def sample() -> dict[str, Any]:
            return {
                "t": time.time(),
                "head": chain.latest_block(),
                "sys": system_busy(),
                "cpu": {
                    "chain": proc_cpu(chain_pid) if chain_pid else 0.0,
                    "nodes (incl. MPyC parties)": sum(proc_cpu(p) for p in node_pids),
                    "bench (requester + owner)": self_cpu(),
                },
            }

        e0, e1 = trio.run(drv.run, a.window, a.inflight, a.warmup, a.drain, sample)
        t_begin, t_end = e0["t"], e1["t"]
        # stop the nodes, then measure the same devnet's ceiling undisturbed
        for n in nodes:
            cluster.kill_node(n)
        say("ceiling: measuring the devnet's own transaction rate")
        ceiling = measure_ceiling(cluster, a)
        # ---- results
        recs = [r for r in drv.recs.values() if r.t_start]
        in_window = [r for r in recs if r.t_reported and t_begin <= r.t_reported <= t_end]
        reported = [r for r in recs if r.t_reported]
        wrong = []
        for r in reported:
            res = read_result(chain, r.task_id)
            if res.value.texts()[0] != str(sum(r.values)):
                wrong.append(r.task_id)
        finalized = [r for r in reported if "TaskFinalized" in r.blocks]
        tx_per_task = [len(r.txs) for r in finalized]
        tx_to_report = [len(r.txs - {r.finalize_tx}) for r in reported]
        rate = len(in_window) / a.window
        phases = {
            "post (send -> receipt)": [r.t_posted - r.t_start for r in reported],
            "announce": [r.t_announced - r.t_posted for r in reported],
            "posted -> committee formed (claims)": [r.t_formed - r.t_posted for r in reported],
            "formed -> shares delivered": [r.t_delivered - r.t_formed for r in reported],
            "shares delivered -> reported (MPC, sigs, report)": [
                r.t_reported - r.t_delivered for r in reported
            ],
            "total (post sent -> reported seen)": [r.t_reported - r.t_start for r in reported],
        }
        cpu = {k: round(e1["cpu"][k] - e0["cpu"][k], 1) for k in e0["cpu"]}
        jiffies = e1["sys"][1] - e0["sys"][1]
        status_counts: dict[str, int] = {}
        for r in recs:
            st = (
                "refunded"
                if r.refunded
                else "finalized"
                if r.t_finalized
                else "reported"
                if r.t_reported
                else "unfinished"
            )
            status_counts[st] = status_counts.get(st, 0) + 1
        out.update(
            {
                "tasks_started": len(recs),
                "tasks_reported_in_window": len(in_window),
                "tasks_per_s": round(rate, 3),
                "status_counts": status_counts,
                "wrong_results": wrong,
                "errors": drv.errors[:10],
                "tx_per_task_from_events": med([float(x) for x in tx_per_task]),
                "tx_per_task_until_report": med([float(x) for x in tx_to_report]),
                # the devnet mines one block per transaction
                "chain_txs_in_window": e1["head"] - e0["head"],
                "chain_txs_per_task_in_window": r3(
                    (e1["head"] - e0["head"]) / max(1, len(in_window))
                ),
                "phases_median_s": {k: r3(med(v)) for k, v in phases.items()},
                "phases_p90_s": {k: r3(pct(v, 90)) for k, v in phases.items()},
                "node_log_phases": node_phases(nodes, {r.task_id for r in reported}),
                "cpu_s_in_window": cpu,
                "machine_busy_fraction": round((e1["sys"][0] - e0["sys"][0]) / max(1, jiffies), 3),
                "cpu_capacity_s": round(a.window * (os.cpu_count() or 1), 1),
            }
        )
        out["ceiling"] = ceiling
    return out


# ---- phase 2: the chain's own ceiling ------------------------------------------------------


class Rpc:
    """A bare JSON-RPC client (one keep-alive HTTP session): no web3 middleware overhead."""

    def __init__(self, url: str) -> None:
        self.url, self.s, self.i = url, requests.Session(), 0

    def __call__(self, method: str, *params: Any) -> Any:
        self.i += 1
        body = {"jsonrpc": "2.0", "id": self.i, "method": method, "params": list(params)}
        r = self.s.post(self.url, json=body, timeout=60).json()
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]


def _signed_batch(
    rpc: Rpc, acct: LocalAccount, n: int, to: str, data: bytes, value: int, gas: int
) -> list[str]:
    nonce = int(rpc("eth_getTransactionCount", acct.address, "pending"), 16)
    chain_id = int(rpc("eth_chainId"), 16)
    base = int(rpc("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    fee = {"maxFeePerGas": 4 * base + 10**9, "maxPriorityFeePerGas": 10**9, "type": 2}
    out = []
    for i in range(n):
        tx = {
            "to": to,
            "value": value,
            "data": data,
            "gas": gas,
            "nonce": nonce + i,
            "chainId": chain_id,
            **fee,
        }
        out.append("0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex())
    return out


def _send_all(rpc: Rpc, raws: list[str], seconds: float) -> tuple[int, float]:
    """eth_sendRawTransaction + its receipt, one after the other, until time is up; returns
    (transactions with a successful receipt, elapsed seconds). The receipt is waited for: the
    devnet holds a transaction that would run its clock too far ahead in the pending block
    (``dnode chain --max-ahead``) and rejects any nonce but the next, so the next transaction
    can only go once this one is mined."""
    t0 = time.perf_counter()
    done = 0
    for raw in raws:
        h = rpc("eth_sendRawTransaction", raw)
        rcpt = rpc("eth_getTransactionReceipt", h)
        give_up = time.perf_counter() + 30
        while rcpt is None and time.perf_counter() < give_up:
            time.sleep(0.02)
            rcpt = rpc("eth_getTransactionReceipt", h)
        if rcpt is None or int(rcpt["status"], 16) != 1:
            raise RuntimeError(f"transaction {h} failed: {rcpt}")
        done += 1
        if time.perf_counter() - t0 >= seconds:
            break
    return done, time.perf_counter() - t0


def _calibrate(rpc: Rpc, acct: LocalAccount, to: str) -> float:
    raws = _signed_batch(rpc, acct, 20, to, b"", 1, 21_000)
    n, dt = _send_all(rpc, raws, 60)
    return n / dt


def measure_ceiling(cluster: DevCluster, a: argparse.Namespace) -> dict[str, Any]:
    rpc = Rpc(cluster.rpc_url)
    keys = [cluster.dev_key() for _ in range(a.threads + 1)]
    accts = [Account.from_key(k) for k in keys]
    sink = Account.create().address
    guess = _calibrate(rpc, accts[0], sink)
    n = int(guess * a.ceiling_seconds * 1.5) + 50
    out: dict[str, Any] = {"seconds_per_measurement": a.ceiling_seconds}

    raws = _signed_batch(rpc, accts[0], n, sink, b"", 1, 21_000)
    done, dt = _send_all(rpc, raws, a.ceiling_seconds)
    out["plain_tx_per_s_1_client"] = round(done / dt, 1)

    clients = [Rpc(cluster.rpc_url) for _ in range(a.threads)]
    batches = [
        _signed_batch(c, acc, n, sink, b"", 1, 21_000)
        for c, acc in zip(clients, accts[1:], strict=True)
    ]
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def run(c: Rpc, b: list[str]) -> None:
        res = _send_all(c, b, a.ceiling_seconds)
        with lock:
            results.append(res)

    t0 = time.perf_counter()
    ths = [threading.Thread(target=run, args=cb) for cb in zip(clients, batches, strict=True)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    out[f"plain_tx_per_s_{a.threads}_clients"] = round(sum(d for d, _ in results) / wall, 1)

    # the task transaction itself (post_task), pre-signed: the EVM cost of a contract call
    chain = chain_client(cluster, keys[0])
    params = TaskParams(program=PROGRAM, owners=(accts[1].address,), input_timeout=10)
    prog = get_program(PROGRAM)
    now = max(int(time.time()), chain.block_timestamp())
    data = chain.contract.encode_abi(
        "post_task",
        args=[
            prog.program_id,
            params.digest,
            prog.capability_bit,
            COMMITTEE,
            now + FAR,
            now + 2 * FAR,
        ],
    )
    gas = 300_000
    raws = _signed_batch(
        rpc, accts[0], max(50, n // 2), chain.address, bytes.fromhex(data[2:]), REWARD, gas
    )
    done, dt = _send_all(rpc, raws, a.ceiling_seconds)
    out["post_task_raw_tx_per_s"] = round(done / dt, 1)

    # post_task through ChainClient: the full client path requesters and nodes use
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < a.ceiling_seconds:
        post(chain, params)
        done += 1
    out["post_task_chainclient_tx_per_s"] = round(done / (time.perf_counter() - t0), 1)
    out["best_plain_tx_per_s"] = max(
        out["plain_tx_per_s_1_client"], out[f"plain_tx_per_s_{a.threads}_clients"]
    )
    return out


# ---- phase 3: gossip latency ---------------------------------------------------------------


def run_gossip(a: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict:
    cluster = DevCluster(
        workdir / "gossip",
        challenge_period=a.challenge_period,
        accounts=a.gossip_nodes + 4,
        say=say,
        placement=a.placement,
    )
    out: dict[str, Any] = {"nodes": a.gossip_nodes, "tasks": a.gossip_tasks}
    with cluster.running():
        names = [f"g-{i + 1:02d}" for i in range(a.gossip_nodes)]
        t0 = time.time()
        nodes = start_nodes(cluster, names, "2ether", [], a.start_parallel)
        out["node_start_s"] = round(time.time() - t0, 1)
        chain = chain_client(cluster, cluster.dev_key())
        owner = Account.create()  # never contributes: nodes that seat themselves just time out
        params = TaskParams(program=PROGRAM, owners=(owner.address,), input_timeout=10)
        say(f"gossip: {a.gossip_nodes} nodes up in {out['node_start_s']} s; settling {a.settle} s")
        time.sleep(a.settle)
        sent: dict[int, tuple[float, float]] = {}  # task id -> (post sent, announce sent)

        def known(task_id: int) -> dict[str, tuple[float, str]]:
            got = {}
            for n in nodes:
                for t, tid, msg in parse_log(n.log_path):
                    if tid == task_id and msg.startswith("params known"):
                        how = msg.split("(via ", 1)[1].split(" ", 1)[0] if "(via " in msg else "?"
                        got[n.member.name] = (t, how)
                        break
            return got

        async def drive() -> None:
            async with ephemeral_host([nodes[0].addrs[0]]) as host:
                for _ in range(a.gossip_tasks):
                    tp = time.time()
                    task_id = await trio.to_thread.run_sync(post, chain, params)
                    ta = time.time()
                    ok = await announce_via(host, [nodes[0].peer_id], task_id, params)
                    if not ok:
                        raise RuntimeError(f"task {task_id}: announcement not accepted")
                    sent[task_id] = (tp, ta)
                    with trio.move_on_after(a.gossip_wait):
                        while len(await trio.to_thread.run_sync(known, task_id)) < len(nodes):
                            await trio.sleep(0.25)
                    await trio.sleep(a.gossip_gap)

        trio.run(drive)
        from_announce, from_post, per_task_max, missing = [], [], [], 0
        paths: dict[str, int] = {}
        for task_id, (tp, ta) in sent.items():
            got = known(task_id)
            missing += len(nodes) - len(got)
            lat = []
            for t, how in got.values():
                from_announce.append(t - ta)
                from_post.append(t - tp)
                lat.append(t - ta)
                paths[how] = paths.get(how, 0) + 1
            if len(got) == len(nodes):
                per_task_max.append(max(lat))
        out.update(
            {
                "samples": len(from_announce),
                "missing": missing,
                "learnt_via": paths,
                "from_announce_p50_s": r3(pct(from_announce, 50)),
                "from_announce_p99_s": r3(pct(from_announce, 99)),
                "from_announce_max_s": r3(max(from_announce) if from_announce else None),
                "from_post_sent_p50_s": r3(pct(from_post, 50)),
                "from_post_sent_p99_s": r3(pct(from_post, 99)),
                "all_nodes_know_p50_s": r3(pct(per_task_max, 50)),
                "all_nodes_know_max_s": r3(max(per_task_max) if per_task_max else None),
                "post_s_median": r3(med([ta - tp for tp, ta in sent.values()])),
            }
        )
    return out


# ---- output --------------------------------------------------------------------------------


def human(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"dnode network benchmark — {m['cores']} CPU(s) {m['cpu']}, Python {m['python']}",
        f"command: {res['command']}",
        "",
    ]
    tp = res.get("throughput")
    threads = res["args"]["threads"]
    if tp:
        c = tp["ceiling"]
        lines += [
            f"## Throughput: {tp['nodes']} nodes, {tp['window_s']:g} s window, "
            f"{tp['inflight']} in flight",
            f"  tasks attested in window       {tp['tasks_reported_in_window']}"
            f"   ({tp['tasks_per_s']} tasks/s)",
            f"  task states                    {tp['status_counts']}"
            f"   wrong results: {len(tp['wrong_results'])}",
            f"  tx per task (events)           {tp['tx_per_task_from_events']}"
            f"   (until report: {tp['tx_per_task_until_report']}; all chain txs in window per "
            f"attested task {tp['chain_txs_per_task_in_window']})",
            "",
            "## Chain ceiling (same devnet process, nodes stopped)",
            f"  plain transfers, 1 client      {c['plain_tx_per_s_1_client']} tx/s",
            f"  plain transfers, {threads} clients     {c[f'plain_tx_per_s_{threads}_clients']}"
            " tx/s",
            f"  post_task pre-signed           {c['post_task_raw_tx_per_s']} tx/s",
            f"  post_task via ChainClient      {c['post_task_chainclient_tx_per_s']} tx/s",
            "",
            "## Ratios (one run)",
        ]
        for k, v in res["ratios"].items():
            lines.append(f"  {k:<52} {v}")
        lines += ["", "## Where a task's time goes (median / p90 s, this process's clock)"]
        for k, v in tp["phases_median_s"].items():
            lines.append(f"  {k:<52} {v} / {tp['phases_p90_s'][k]}")
        lines.append("  from the nodes' logs (median s):")
        for k, v in tp["node_log_phases"].items():
            lines.append(f"    {k:<50} {v['median_s']}  (n={v['n']})")
        lines.append(
            f"  CPU seconds in the window (capacity {tp['cpu_capacity_s']}, machine busy "
            f"{100 * tp['machine_busy_fraction']:.0f}%): "
            + ", ".join(f"{k} {v}" for k, v in tp["cpu_s_in_window"].items())
        )
        if tp["errors"]:
            lines.append(f"  errors: {tp['errors'][:3]}")
        lines.append("")
    g = res.get("gossip")
    if g:
        lines += [
            f"## Gossip: {g['nodes']} nodes, {g['tasks']} tasks announced to ONE node",
            f"  params known, from announce     p50 {g['from_announce_p50_s']} s   "
            f"p99 {g['from_announce_p99_s']} s   max {g['from_announce_max_s']} s",
            f"  params known, from post sent    p50 {g['from_post_sent_p50_s']} s   "
            f"p99 {g['from_post_sent_p99_s']} s",
            f"  until all {g['nodes']} know (per task)    p50 {g['all_nodes_know_p50_s']} s   "
            f"max {g['all_nodes_know_max_s']} s",
            f"  samples {g['samples']}, missing {g['missing']}, learnt via {g['learnt_via']}",
        ]
    lab = res.get("lab")
    if lab:
        net, rt = lab["network"], lab["router"]
        lines += [
            "",
            f"## Across hosts: {len(net['hosts'])} network namespaces, RTT {net['rtt_ms']:g} ms "
            f"± {net['jitter_ms']:g} ms, loss {net['loss_per_packet']:g} per packet each way",
            f"  router: {rt.get('received')} packets, dropped {rt.get('dropped_loss')} "
            f"({100 * (lab['router_drop_fraction'] or 0):.2f}%); lab run {lab['seconds']} s; "
            f"namespaces left {lab['namespaces_left']}",
            f"  {'':<52} {'loopback':>10} {'lab':>10} {'lab/loop':>9}",
        ]
        for k, v in res["lab_vs_loopback"].items():
            lines.append(
                f"  {k:<52} {v['loopback']!s:>10} {v['lab']!s:>10} {v['lab/loopback']!s:>9}"
            )
    lines.append(f"\ntotal {res['seconds']} s; logs in {res['workdir']}")
    return "\n".join(lines)


def run_phases(a: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict:
    """The benchmark's phases, on loopback or (``a.placement``) across the lab's hosts."""
    res: dict[str, Any] = {}
    if "throughput" not in a.skip:
        tp = run_throughput(a, workdir, say)
        res["throughput"] = tp
        c = tp["ceiling"]
        per_task = tp["tx_per_task_from_events"] or 0
        bound = c["best_plain_tx_per_s"] / per_task if per_task else None
        bound_task_tx = c["post_task_raw_tx_per_s"] / per_task if per_task else None
        res["ratios"] = {
            "chain-bound max tasks/s (plain ceiling / tx per task)": r3(bound),
            "  same with post_task-cost txs": r3(bound_task_tx),
            "sustained tasks/s": tp["tasks_per_s"],
            "sustained / chain-bound max (target >= 0.5)": r3(
                tp["tasks_per_s"] / bound if bound else None
            ),
            "post_task raw / plain transfer tx/s": r3(
                c["post_task_raw_tx_per_s"] / c["plain_tx_per_s_1_client"]
            ),
            "post_task ChainClient / raw tx/s": r3(
                c["post_task_chainclient_tx_per_s"] / c["post_task_raw_tx_per_s"]
            ),
            "chain txs in window / window / ceiling (chain busy)": r3(
                tp["chain_txs_in_window"] / tp["window_s"] / c["best_plain_tx_per_s"]
            ),
        }
    if "gossip" not in a.skip:
        res["gossip"] = run_gossip(a, workdir, say)
    return res


# ---- across hosts (scripts/netlab.py) ------------------------------------------------------


def lab_hosts(a: argparse.Namespace) -> list[str]:
    """One host per process: the chain, the requester (this driver: it is also the data
    owner of every task), and each node under its cluster name."""
    hosts = ["chain", "requester"]
    if "throughput" not in a.skip:
        hosts += [f"node-{i + 1}" for i in range(a.nodes)]
    if "gossip" not in a.skip:
        hosts += [f"g-{i + 1:02d}" for i in range(a.gossip_nodes)]
    return hosts


def run_in_lab(a: argparse.Namespace, workdir: Path, say: Callable[[str], None]) -> dict:
    """The same phases with every process on its own host of a fresh lab: this script runs
    again (``--in-lab``) on the requester's host and places the clusters on the others."""
    import netlab

    lab = netlab.NetLab(lab_hosts(a), a.rtt, a.jitter, a.loss, seed=a.lab_seed)
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    args.update(netlab=False, json=True, placement=None)
    say(f"lab: {len(lab.names)} hosts, RTT {a.rtt:g} ms ± {a.jitter:g} ms, loss {a.loss:g}")
    with lab:
        spec = {
            "hosts": {h.name: [h.netns, h.address] for h in lab.hosts.values()},
            "default": "requester",
            "args": args,
            "workdir": str(workdir / "lab"),
        }
        t0 = time.time()
        r = lab.run(
            "requester",
            [sys.executable, os.path.abspath(__file__), "--in-lab", json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.2)  # the router's counters are written every second
        router = lab.router_stats()
        if r.returncode != 0:
            raise RuntimeError(f"the run in the lab failed (exit {r.returncode})")
        out = json.loads(r.stdout)
        out["seconds"] = round(time.time() - t0, 1)
    out["network"] = lab.describe()
    out["router"] = router
    out["router_drop_fraction"] = r3(router.get("dropped_loss", 0) / max(1, router["received"]))
    out["namespaces_left"] = netlab.ours()
    return out


def in_lab_main(spec: dict[str, Any]) -> None:
    """``--in-lab SPEC``: run the phases on the lab's hosts (this process is on one)."""
    a = argparse.Namespace(**spec["args"])
    a.placement = Placement(
        {n: (["ip", "netns", "exec", ns], addr) for n, (ns, addr) in spec["hosts"].items()},
        spec["default"],
    )
    os.chdir(ROOT)

    def say(s: str) -> None:
        print(f"[lab] {s}", file=sys.stderr, flush=True)

    print(json.dumps(run_phases(a, Path(spec["workdir"]), say)))


def compare(loop: dict[str, Any], lab: dict[str, Any]) -> dict[str, Any]:
    """The figures that move with the network, loopback beside lab, and lab / loopback."""
    rows: dict[str, Any] = {}

    def add(name: str, x: float | None, y: float | None) -> None:
        rows[name] = {"loopback": x, "lab": y, "lab/loopback": r3(y / x) if x and y else None}

    lt, bt = loop.get("throughput"), lab.get("throughput")
    if lt and bt:
        add("sustained tasks/s", lt["tasks_per_s"], bt["tasks_per_s"])
        add("tasks finalized", lt["status_counts"].get("finalized", 0),
            bt["status_counts"].get("finalized", 0))  # fmt: skip
        for k in lt["phases_median_s"]:
            add(f"median {k}, s", lt["phases_median_s"][k], bt["phases_median_s"][k])
        add(
            "p90 total (post sent -> reported seen), s",
            lt["phases_p90_s"]["total (post sent -> reported seen)"],
            bt["phases_p90_s"]["total (post sent -> reported seen)"],
        )
        for k in ("plain_tx_per_s_1_client", "post_task_chainclient_tx_per_s"):
            add(f"chain {k}", lt["ceiling"][k], bt["ceiling"][k])
    lg, bg = loop.get("gossip"), lab.get("gossip")
    if lg and bg:
        for k in ("from_announce_p50_s", "from_announce_p99_s", "all_nodes_know_p50_s"):
            add(f"gossip {k}", lg[k], bg[k])
        add("gossip missing", lg["missing"], bg["missing"])
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--in-lab":
        in_lab_main(json.loads(sys.argv[2]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--quick", action="store_true", help="short run (~3-4 min)")
    p.add_argument("--window", type=float, help="throughput window, s [60; quick 15]")
    p.add_argument("--nodes", type=int, default=5, help="throughput nodes [5]")
    p.add_argument("--inflight", type=int, default=6, help="tasks in flight [6]")
    p.add_argument("--max-tasks", type=int, default=64, help="--max-tasks of each node [64]")
    p.add_argument("--mpc-timeout", type=float, default=30, help="nodes' --mpc-timeout [30]")
    p.add_argument("--stake", default="20ether", help="stake of each throughput node [20ether]")
    p.add_argument("--warmup", type=int, default=1, help="tasks before the window [1]")
    p.add_argument("--drain", type=float, default=60, help="s to let in-flight tasks end [60]")
    p.add_argument("--challenge-period", type=int, default=1, help="chain seconds [1]")
    p.add_argument("--threads", type=int, default=4, help="clients for the threaded ceiling [4]")
    p.add_argument("--ceiling-seconds", type=float, help="per ceiling measurement [8; quick 2]")
    p.add_argument("--gossip-nodes", type=int, help="gossip nodes [20; quick 8]")
    p.add_argument("--gossip-tasks", type=int, help="tasks for gossip latency [20; quick 5]")
    p.add_argument("--gossip-wait", type=float, default=15, help="max s per task [15]")
    p.add_argument("--gossip-gap", type=float, default=0.5, help="s between tasks [0.5]")
    p.add_argument("--settle", type=float, default=3, help="s after the nodes start [3]")
    p.add_argument("--start-parallel", type=int, default=4, help="nodes started at once [4]")
    p.add_argument("--skip", choices=["throughput", "gossip"], action="append", default=[])
    p.add_argument("--workdir", type=Path, help="homes and logs [a fresh temp dir]")
    p.add_argument(
        "--netlab",
        action="store_true",
        help="then run the same phases across hosts (scripts/netlab.py; needs root) and "
        "report both",
    )
    p.add_argument("--rtt", type=float, default=50.0, help="lab: round trip between hosts, ms")
    p.add_argument("--jitter", type=float, default=5.0, help="lab: ± per one-way trip, ms [5]")
    p.add_argument("--loss", type=float, default=0.01, help="lab: per packet each way [0.01]")
    p.add_argument("--lab-seed", type=int, default=None, help="lab: the router's loss/jitter rng")
    a = p.parse_args()
    a.window = a.window or (15 if a.quick else 60)
    a.ceiling_seconds = a.ceiling_seconds or (2 if a.quick else 8)
    a.gossip_nodes = a.gossip_nodes or (8 if a.quick else 20)
    a.gossip_tasks = a.gossip_tasks or (5 if a.quick else 20)
    if a.quick:
        a.drain = min(a.drain, 20)
    os.chdir(ROOT)  # node processes (python -m cli) must import this checkout too
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="dnode-bench-net-"))

    def say(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    t0 = time.time()
    res: dict[str, Any] = {
        "benchmark": "network",
        "command": "python scripts/bench_network.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "workdir": str(workdir),
    }
    a.placement = None  # loopback: every process on 127.0.0.1 of this host
    res.update(run_phases(a, workdir, say))
    if a.netlab:
        res["lab"] = run_in_lab(a, workdir, say)
        res["lab_vs_loopback"] = compare(res, res["lab"])
    res["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(res, indent=1) if a.json else human(res))


if __name__ == "__main__":
    main()
