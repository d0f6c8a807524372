"""Committee sortition end to end, as separate OS processes.

1. A candidate the sortition drew dies before it can join: the next-ranked candidate (a
   backup) takes its seat and the task completes.
2. Too few eligible nodes (one asks more than the task offers per seat): `dnode task status`
   says why the task waits, and after the seat deadline the refund reason it shows.
"""

from __future__ import annotations

import signal
import time
from fractions import Fraction
from pathlib import Path

import pytest

from dnode.cli.devcluster import DevCluster
from dnode.contracts.client import ChainClient, TaskStatus, connect
from dnode.contracts.manifest import Deployment
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.candidates import candidates_for
from dnode.scheduler.sortition import rank

pytestmark = pytest.mark.slow

INPUTS = {"owner-a": ["10", "20", "30"], "owner-b": ["40", "50"]}


def _chain(cluster: DevCluster) -> ChainClient:
    return ChainClient(connect(cluster.rpc_url), Deployment.load(cluster.manifest))


def _wait(cond, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.5)


def test_backup_takes_the_seat_of_a_dead_candidate(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, challenge_period=4, accounts=12)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 6)])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}
        by_addr = {n.member.address.lower(): n for n in nodes}
        # every node but the bootstrap one is paused before the task exists
        for n in nodes[1:]:
            cluster.signal_node(n, signal.SIGSTOP)
        task_id = cluster.post_mpc(requester, list(owners.values()))
        chain = _chain(cluster)
        task = chain.task_info(task_id)
        cands = _wait(
            lambda: candidates_for(chain, task, 0, [o.address for o in owners.values()]),
            "the seed block",
            60,
        )
        # the full order the nodes will see as the window grows: the real ranking code
        p = cands.pool
        order = rank(p.seed, task_id, 0, p.slot_count, cands.holder, cands.verdict, 4096, want=5)
        ranked = [c.address.lower() for c in order.candidates]
        assert sorted(ranked) == sorted(by_addr)  # all five are eligible candidates
        victim = next(a for a in ranked[:3] if by_addr[a] is not nodes[0])
        expected = [a for a in ranked if a != victim][:3]
        assert ranked[3] in expected  # the first backup moves up into the committee
        cluster.kill_node(by_addr[victim])
        for n in nodes[1:]:
            if n.member.address.lower() != victim:
                cluster.signal_node(n, signal.SIGCONT)

        files = cluster.write_inputs(INPUTS)
        outs = cluster.contribute_all(task_id, owners, files)
        assert all(len(o["seats"]) == 3 for o in outs.values())
        res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "240")
        values = [Fraction(v) for vs in INPUTS.values() for v in vs]
        mean = AggregateResult.from_fraction(sum(values) / len(values), len(values))
        assert res["value_scaled"] == mean.value

        status = _wait(
            lambda: (
                (st := cluster.dnode(requester, "task", "status", str(task_id)))["status"]
                == "finalized"
                and st
            ),
            "finalization",
            90,
        )
        seats = [a.lower() for a in status["seats"]]
        assert victim not in seats
        assert sorted(seats) == sorted(expected)
        backup = by_addr[ranked[3]]
        assert "backups take their seats" in "".join(
            n.log_path.read_text() for n in nodes if n.member.address.lower() in expected
        )
        assert cluster.dnode(backup.member, "balance")["credits"] > 0
        for n in nodes:
            if n.member.address.lower() != victim:
                assert "Traceback" not in n.log_path.read_text()


def test_too_few_eligible_nodes_end_in_a_refund_with_its_reason(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        cluster.start_node("node-1")
        cluster.start_node("node-2")
        cluster.start_node("node-3", price="1ether")  # asks more than 0.3 / 3 per seat
        requester = cluster.member("requester")
        owner = cluster.member("owner-a")
        task_id = cluster.post_mpc(
            requester, [owner], extra=["--seat-timeout", "25", "--allow-single-owner"]
        )

        def waiting_on_price() -> dict | None:
            st = cluster.dnode(requester, "task", "status", str(task_id))
            return st if "price" in st["note"] else None

        st = _wait(waiting_on_price, "the status to name the price", 60)
        assert st["status"] == "open"
        assert st["note"].startswith("waiting for 1 of 3 seats")
        assert "no eligible node offers price <= 0.1 ETH per seat" in st["note"]
        assert len(st["eligible_candidates"]) == 2

        chain = _chain(cluster)
        deadline = chain.task_info(task_id).seat_deadline
        _wait(lambda: chain.block_timestamp() > deadline, "the seat deadline", 60)
        cluster.dnode(requester, "task", "cancel", str(task_id))
        st = cluster.dnode(requester, "task", "status", str(task_id))
        assert st["status"] == TaskStatus.REFUNDED.name.lower()
        assert st["refund_reason"] == "sortition: seats not filled"
        assert "not enough eligible candidates joined before the seat deadline" in st["note"]
        assert cluster.dnode(requester, "balance")["credits"] == 3 * 10**17
