"""Chaos run: a devnet, N node processes, MPC tasks with data owners, and kill -9 of a random
node every ~K seconds (restarted a moment later with the same home, key and state db).

Pacing: ``--concurrency`` (default 3) is the number of tasks in flight. Each worker posts a
task, contributes the owners' inputs (one-shot mode; with ``--owner-agents`` the agents do it
on their own), then waits until that task is reported or settled, or its report deadline has
passed, before it posts the next one. (Before 2026-12-02 a worker in ``--owner-agents`` mode
moved on right after posting, so all tasks were posted within seconds and most could never get
a committee: 20 tasks x 3 seats against 5 nodes x 4 seats.)

It ends when every posted task is finalized or refunded (this script cancels or finalizes
tasks once the contract allows it: anyone may), then audits the chain and the nodes' state
databases and prints one JSON object (``--json``):

* tasks posted / finalized (with the correct result) / refunded / left open;
* the money invariant: contract balance == escrows of open tasks + dispute bonds + every
  account's stake + unbonding + credits (as tests/contracts/test_dnode_disputes.balance_ok);
* conflicting signatures: tasks for which one node's db holds two different signed results,
  plus on-chain report signers whose db holds no signature for that exact result (0 expected);
* nonce gaps per node account: outbox nonces vs the account's on-chain nonce (0 expected);
* kills and restarts done; seats resumed / abandoned after restarts (from the node logs).

Example (the figures in docs/benchmarks.md):
    python scripts/chaos.py --nodes 5 --tasks 20 --kill-interval 30 --seed 1 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnode.cli.devcluster import ClusterError, DevCluster, Member, NodeProc, free_port  # noqa: E402
from dnode.contracts.client import TERMINAL_STATUSES, ChainClient, TaskStatus, connect  # noqa: E402
from dnode.contracts.errors import ContractsError  # noqa: E402
from dnode.contracts.manifest import Deployment  # noqa: E402
from dnode.contracts.outbox import TxOutbox, tx_nonce  # noqa: E402
from dnode.node.state import read_only  # noqa: E402
from dnode.oracle.encoding import AggregateResult  # noqa: E402

OWNERS = ("owner-a", "owner-b", "owner-c")
# a task no longer counts as in flight once reported (its seats are released at finalize,
# one challenge period later) or settled
RELEASED = (TaskStatus.REPORTED, TaskStatus.DISPUTED, TaskStatus.RECOMPUTING, *TERMINAL_STATUSES)
AWAIT_GRACE_S = 30  # past a task's report deadline: the janitor cancels it (polls every 2 s)


class Chaos:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.say = (lambda s: print(s, file=sys.stderr, flush=True)) if args.verbose else _quiet
        self.cluster = DevCluster(
            workdir,
            challenge_period=args.challenge_period,
            accounts=args.nodes + len(OWNERS) + 4,
            say=self.say,
        )
        self.tasks: dict[int, Fraction | None] = {}  # task id -> expected mean (None: unknown)
        self.post_errors: list[str] = []
        self.kills = 0
        self.restarts = 0
        self.posting_done = threading.Event()
        self.stop = threading.Event()
        self.mu = threading.Lock()
        self.local = threading.local()
        self.janitor_txs = 0
        self.agent_mean: Fraction | None = None

    # ---- the run --------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        c = self.cluster
        t0 = time.monotonic()
        with c.running():
            for i in range(self.args.nodes):
                port = free_port()
                c.start_node(
                    f"node-{i + 1}",
                    extra_args=[
                        "--listen",
                        f"/ip4/127.0.0.1/tcp/{port}",
                        "--mpc-timeout",
                        str(self.args.mpc_timeout),
                        "--max-tasks",
                        "4",
                    ],
                )
            requester = c.member("requester")
            owners = {n: c.member(n) for n in OWNERS}
            if self.args.owner_agents:
                self._start_agents(owners)
            janitor = c.member("janitor")
            chain = self._client(janitor)
            killer = threading.Thread(target=self._killer, daemon=True)
            killer.start()
            with ThreadPoolExecutor(self.args.concurrency) as pool:
                futs = [
                    pool.submit(self._one_task, i, requester, owners)
                    for i in range(self.args.tasks)
                ]
                poster = threading.Thread(target=self._await_posting, args=(futs,), daemon=True)
                poster.start()
                settled = self._janitor(chain, t0)
            self.stop.set()
            killer.join(timeout=120)
            for n in c.nodes:  # let every node come back once to settle its outbox
                if not n.alive:
                    self._restart(n)
            time.sleep(self.args.settle)
            wall = time.monotonic() - t0
            report = self._audit(chain)
            for n in c.nodes:  # the nodes' dbs are read with every writer gone
                if n.alive:
                    os.killpg(n.proc.pid, signal.SIGTERM)
                    n.proc.wait(30)
            report.update(self._db_audit(chain))
        report.update(
            {
                "nodes": self.args.nodes,
                "kill_interval_s": self.args.kill_interval,
                "seed": self.args.seed,
                "owner_agents": bool(self.args.owner_agents),
                "kills": self.kills,
                "restarts": self.restarts,
                "all_settled": settled,
                "post_errors": len(self.post_errors),
                "post_error_messages": [m[-400:] for m in self.post_errors],
                "janitor_txs": self.janitor_txs,
                "wall_s": round(wall, 1),
            }
        )
        report.update(self._log_counts())
        report["ok"] = bool(
            settled
            and report["balance_invariant_ok"]
            and report["conflicting_signatures"] == 0
            and report["nonce_gaps"] == 0
        )
        return report

    def _start_agents(self, owners: dict[str, Member]) -> None:
        """--owner-agents: each owner runs `dnode owner start` with one fixed dataset (so
        every task has the same expected mean), bootstrapped to every node."""
        c = self.cluster
        rng = random.Random(self.args.seed)
        everything: list[int] = []
        for n, m in owners.items():
            vs = [rng.randint(0, 1000) for _ in range(rng.randint(2, 6))]
            everything += vs
            data = c.workdir / f"{n}-dataset.csv"
            data.write_text("\n".join(map(str, vs)) + "\n")
            cfg = c.workdir / f"{n}-agent.toml"
            cfg.write_text(
                "poll_interval = 1.0\nretry_interval = 2.0\n"
                f'[[dataset]]\nname = "{n}"\nfile = "{data}"\n'
            )
            c.start_agent(m, cfg, bootstrap=[x.addrs[0] for x in c.nodes if x.addrs])
        self.agent_mean = Fraction(sum(everything), len(everything))

    def _client(self, m: Member) -> ChainClient:
        from dnode.node import keystore

        dep = Deployment.load(self.cluster.manifest)
        acct = keystore.load_account(
            keystore.find_keyfile(m.home / "keystore", None), self.cluster.password_file.read_text()
        )
        return ChainClient(connect(self.cluster.rpc_url), dep, acct)

    def _one_task(self, i: int, requester: Member, owners: dict[str, Member]) -> None:
        c = self.cluster
        rng = random.Random(self.args.seed * 1000 + i)
        values = {n: [rng.randint(0, 1000) for _ in range(rng.randint(2, 6))] for n in owners}
        everything = [v for vs in values.values() for v in vs]
        a = self.args
        try:
            task_id = c.post_mpc(
                requester,
                list(owners.values()),
                reward="0.03ether",
                extra=[
                    "--seat-timeout",
                    str(a.seat_timeout),
                    "--report-timeout",
                    str(a.report_timeout),
                    "--input-timeout",
                    str(a.input_timeout),
                ],
            )
        except (ClusterError, ValueError) as e:
            self.post_errors.append(f"post {i}: {e}")
            return
        with self.mu:
            self.tasks[task_id] = Fraction(sum(everything), len(everything))
            if self.args.owner_agents:  # the agents contribute their datasets on their own
                self.tasks[task_id] = self.agent_mean
        self.say(f"task   {task_id} posted ({len(everything)} values)")
        if not self.args.owner_agents:  # with agents, the owners contribute on their own
            files = {}
            for n, vs in values.items():
                files[n] = c.workdir / f"{n}-task{task_id}.csv"
                files[n].write_text("\n".join(map(str, vs)) + "\n")
            try:
                c.contribute_all(task_id, owners, files)
            except (ClusterError, ValueError) as e:
                self.post_errors.append(f"contribute {task_id}: {str(e)[-300:]}")
        self._await_task(task_id)

    def _await_task(self, task_id: int) -> None:
        """Hold this worker (one of ``--concurrency``) until its task is reported or settled,
        so ``--concurrency`` bounds the tasks in flight, not only the posts in progress.

        Bounded by the task's own deadlines: past its report deadline (chain time) plus a
        grace for the janitor's cancel, the worker moves on whatever the status."""
        chain = getattr(self.local, "chain", None)
        if chain is None:  # one read-only client per worker thread (web3 is not shared)
            chain = self.local.chain = self.cluster.reader()
        while True:
            try:
                t = chain.task_info(task_id)
                now = max(int(time.time()), chain.block_timestamp())
            except ContractsError:
                time.sleep(2)
                continue
            if t.status in RELEASED or now > t.report_deadline + AWAIT_GRACE_S:
                return
            time.sleep(2)

    def _await_posting(self, futs: list[Any]) -> None:
        for f in futs:
            f.exception()  # each task logs its own errors; wait for all of them
        self.posting_done.set()

    def _killer(self) -> None:
        """SIGKILL a random live node every ~kill_interval s; restart it a moment later."""
        c = self.cluster
        while not self.stop.wait(self.args.kill_interval * self.rng.uniform(0.8, 1.2)):
            live = [n for n in c.nodes if n.alive]
            if len(live) < 2:
                continue
            victim = self.rng.choice(live)
            c.kill_node(victim)
            self.kills += 1
            self.say(f"kill   {victim.member.name} (kill #{self.kills})")
            if self.stop.wait(self.rng.uniform(1, 4)):
                pass
            self._restart(victim)

    def _restart(self, node: NodeProc) -> None:
        c = self.cluster
        for attempt in range(5):
            others = [n.addrs[0] for n in c.nodes if n is not node and n.alive and n.addrs]
            try:
                c.restart_node(node, bootstrap=others)
                self.restarts += 1
                return
            except ClusterError as e:
                self.say(f"restart of {node.member.name} failed (attempt {attempt + 1}): {e}")
                time.sleep(2)

    def _janitor(self, chain: ChainClient, t0: float) -> bool:
        """Cancel or finalize tasks once the contract allows it, until all are settled."""
        period = int(chain.deployment.params["challenge_period"])
        while True:
            ids = list(range(1, chain.task_count() + 1))
            open_ids = []
            for task_id in ids:
                try:
                    t = chain.task_info(task_id)
                except ContractsError:
                    open_ids.append(task_id)
                    continue
                if t.status in TERMINAL_STATUSES:
                    continue
                open_ids.append(task_id)
                # the next block's time: a devnet only stamps blocks when it mines one
                now = max(int(time.time()), chain.block_timestamp() + 1)
                m = t.committee_size
                declined = bin(t.declined_bitmap).count("1")
                action = None
                seating_over = t.status == TaskStatus.OPEN and now > t.seat_deadline
                computing_over = t.status == TaskStatus.COMPUTING and (
                    now > t.report_deadline or declined > m - (m // 2 + 1)
                )
                if seating_over or computing_over:
                    action = chain.cancel
                elif t.status == TaskStatus.REPORTED and now >= t.reported_at + period + 30:
                    action = chain.finalize  # the nodes finalize first; this is the backstop
                elif t.status in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING):
                    action = chain.resolve_dispute
                if action is not None:
                    try:
                        action(task_id)
                        self.janitor_txs += 1
                    except ContractsError as e:
                        self.say(f"janitor: task {task_id}: {e}")
            if self.posting_done.is_set() and not open_ids:
                return True
            if time.monotonic() - t0 > self.args.max_wall:
                return False
            time.sleep(2)

    # ---- audits ---------------------------------------------------------------------------

    def _audit(self, chain: ChainClient) -> dict[str, Any]:
        finalized = refunded = correct = 0
        open_left = []
        escrow = 0
        bonded = 0
        slashed = 0
        addresses = {m.address for m in self.cluster.members.values()}
        for ev in chain.events(chain.deployment.deploy_block):
            a = ev.args
            for key in ("requester", "node", "disputer", "account"):
                if isinstance(a.get(key), str):
                    addresses.add(a[key])
            for member in a.get("members", []) or []:
                addresses.add(member)
            if ev.name == "TaskRefunded":
                slashed += int(a["slashed_seats"])
        # every task on-chain, also one whose `task post` died after posting (id unknown here)
        for task_id in range(1, chain.task_count() + 1):
            expected = self.tasks.get(task_id)
            t = chain.task_info(task_id)
            if t.status == TaskStatus.FINALIZED:
                finalized += 1
                if expected is not None and t.result is not None:
                    want = AggregateResult.from_fraction(expected, _count(t.result))
                    correct += int(AggregateResult.decode(t.result).value == want.value)
            elif t.status == TaskStatus.REFUNDED:
                refunded += 1
            elif t.status != TaskStatus.OVERTURNED:  # an overturn paid the re-execution
                open_left.append(task_id)
                escrow += t.reward
                if t.status in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING):
                    # a dispute posts max(dispute_bond, reward)
                    bonded += max(int(chain.deployment.params["dispute_bond"]), t.reward)
        # slashed collateral no one is owed is credited to the zero address (market.BURN)
        held = escrow + bonded + chain.credits("0x" + "00" * 20)
        for who in sorted(x for x in addresses if x):
            info = chain.node_info(who)
            held += info.stake + info.unbonding + chain.credits(who)
        balance = chain.balance_of_contract()
        return {
            "tasks_posted": chain.task_count(),
            "tasks_finalized": finalized,
            "tasks_finalized_correct": correct,
            "tasks_refunded": refunded,
            "tasks_open": open_left,
            "seats_slashed": slashed,
            "contract_balance_wei": balance,
            "accounted_wei": held,
            "balance_invariant_ok": balance == held,
        }

    def _db_audit(self, chain: ChainClient) -> dict[str, Any]:
        conflicts = 0
        refusals = 0
        gaps: dict[str, int] = {}
        outbox = {"txs": 0, "reverted": 0, "replacements": 0}
        reported: dict[int, tuple[bytes, list[str]]] = {}
        for ev in chain.events(chain.deployment.deploy_block):
            if ev.name == "ResultReported" and ev.args["round"] == 0:
                t = chain.task_info(int(ev.args["task_id"]))
                bitmap = int(ev.args["signers_bitmap"])
                signers = [a.lower() for i, a in enumerate(t.committee) if bitmap >> i & 1]
                from eth_utils import keccak

                reported[t.task_id] = (keccak(bytes(ev.args["result"])), signers)
        for n in self.cluster.nodes:
            addr = n.member.address.lower()
            st = read_only(n.member.home / "state")
            by_task: dict[int, set[bytes]] = {}
            for s in st.signatures():
                by_task.setdefault(s.task_id, set()).add(s.result_digest)
            conflicts += sum(1 for ds in by_task.values() if len(ds) > 1)
            for task_id, (digest, signers) in reported.items():
                if addr in signers and by_task.get(task_id) != {digest}:
                    conflicts += 1  # on-chain signature this node's protection db never issued
            refusals += st.refusals()
            st.close()
            box = TxOutbox(n.member.home / "state" / "node.db")
            rows = box.rows(addr)
            chain_nonce = int(chain.w3.eth.get_transaction_count(info_addr(n), "latest"))
            done = {r.nonce for r in rows if r.state in ("mined", "reverted")}
            first = min((r.nonce for r in rows), default=chain_nonce)
            missing = [k for k in range(first, chain_nonce) if k not in done]
            pending = [r.nonce for r in rows if r.state == "pending"]
            wrong = sum(
                1 for r in rows if r.mined_hash and tx_nonce(chain.w3, r.mined_hash) != r.nonce
            )
            gaps[n.member.name] = len(missing) + len(pending) + wrong
            outbox["txs"] += len(rows)
            outbox["reverted"] += sum(1 for r in rows if r.state == "reverted")
            outbox["replacements"] += sum(len(r.tx_hashes) - 1 for r in rows)
            box.close()
        return {
            "conflicting_signatures": conflicts,
            "signing_refusals": refusals,
            "nonce_gaps_per_node": gaps,
            "nonce_gaps": sum(gaps.values()),
            "outbox_txs": outbox["txs"],
            "outbox_reverted_onchain": outbox["reverted"],
            "outbox_fee_replacements": outbox["replacements"],
        }

    def _log_counts(self) -> dict[str, int]:
        counts = {
            "seats_resumed": 0,
            "seats_resumed_mpc_rerun": 0,
            "seats_abandoned_after_restart": 0,
            "seats_declined": 0,
        }
        for n in self.cluster.nodes:
            text = n.log_path.read_text(errors="replace")
            counts["seats_resumed"] += text.count(": resuming")
            counts["seats_resumed_mpc_rerun"] += text.count("(rerunning the MPC)")
            counts["seats_abandoned_after_restart"] += text.count("cannot resume round")
            counts["seats_declined"] += text.count("declined round")
        if self.cluster.agents:  # --owner-agents: did every seated committee get the shares?
            counts["agent_rounds_shared"] = 0
            counts["agent_rounds_all_acked"] = 0
            for a in self.cluster.agents:
                text = a.log_path.read_text(errors="replace")
                counts["agent_rounds_shared"] += text.count(": sharing recorded")
                counts["agent_rounds_all_acked"] += text.count("every seat acknowledged")
        return counts


def info_addr(n: NodeProc) -> Any:
    return n.member.address


def _count(result: bytes) -> int:
    return AggregateResult.decode(result).count


def _quiet(s: str) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--kill-interval", type=float, default=30.0, help="seconds between kills")
    p.add_argument(
        "--concurrency",
        type=int,
        default=3,
        help="tasks in flight: a worker posts a task (and, without --owner-agents, runs the "
        "owners' `task contribute`), then waits until it is reported or settled (or its "
        "report deadline passed) before it posts the next",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seat-timeout", type=int, default=90)
    p.add_argument("--report-timeout", type=int, default=240)
    p.add_argument("--input-timeout", type=int, default=60)
    p.add_argument("--mpc-timeout", type=float, default=45.0)
    p.add_argument("--challenge-period", type=int, default=5)
    p.add_argument("--settle", type=float, default=5.0, help="seconds before the final audit")
    p.add_argument("--max-wall", type=float, default=3600.0, help="give up after (seconds)")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument(
        "--owner-agents",
        action="store_true",
        help="owners run `dnode owner start` (retrying deliveries) instead of one-shot "
        "`task contribute` per task",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--verbose", action="store_true", help="progress on stderr")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dnode-chaos-"))
    report = Chaos(args, workdir).run()
    report["workdir"] = str(workdir)
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:32} {v}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
