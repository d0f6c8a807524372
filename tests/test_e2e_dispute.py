"""A dispute end to end, as separate OS processes: 3 + 5 nodes, a requester, 3 data owners.

The requester disputes an honest result; the five nodes outside the committee form the
re-execution committee (m + 2 = 5) from signed join intents, the owners re-share fresh shares
to it, it recomputes the same result and reports it: the dispute is upheld, the original
signers share the reward, the re-execution signers are paid the reward out of the
requester's bond (max(dispute_bond, reward): paid re-execution, issues 12 and 13), the task
ends FINALIZED.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import pytest

from dnode.cli.devcluster import DevCluster
from dnode.oracle.encoding import AggregateResult

pytestmark = pytest.mark.slow

INPUTS = {
    "owner-a": ["34", "51", "29", "62"],
    "owner-b": ["71", "23", "56"],
    "owner-c": ["33", "48", "67", "52"],
}
REWARD = 3 * 10**17
BOND = REWARD  # max(dispute_bond = the seat collateral 0.1 ether, the reward)


def _wait_status(cluster: DevCluster, who, task_id: int, want: str, timeout: float) -> dict:
    st = cluster.wait_status(who, task_id, want, timeout=timeout)
    assert st["status"] == want, f"task is {st['status']}, not {want}"
    return st


def test_dispute_upheld_end_to_end(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, challenge_period=25, dispute_period=760, accounts=14)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 9)])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}
        task_id = cluster.post_mpc(requester, list(owners.values()))
        files = cluster.write_inputs(INPUTS)

        def contribute(name: str, *extra: str) -> dict:
            return cluster.contribute(owners[name], task_id, files[name], *extra)

        with ThreadPoolExecutor(3) as pool:
            outs = list(pool.map(contribute, INPUTS))
        assert all(len(o["seats"]) == 3 and o["round"] == 0 for o in outs)
        res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "120")
        everything = [Fraction(v) for vs in INPUTS.values() for v in vs]
        expected = AggregateResult.from_fraction(sum(everything) / len(everything), len(everything))
        assert res["value_scaled"] == expected.value and not res["final"]

        # the requester disputes within the challenge window
        t0 = time.monotonic()
        out = cluster.dnode(requester, "task", "dispute", str(task_id))
        assert out["status"] == "disputed" and out["bond"] == BOND
        status = cluster.dnode(requester, "task", "status", str(task_id))
        assert status["status"] in ("disputed", "recomputing")
        committee = {a.lower() for a in status["seats"]}
        rerun_nodes = [n for n in nodes if n.member.address.lower() not in committee]
        assert len(rerun_nodes) == 5

        # owners re-share to the re-execution committee (explicit --round 1, or automatic)
        with ThreadPoolExecutor(3) as pool:
            extras = {"owner-a": ("--round", "1"), "owner-b": ("--round", "1"), "owner-c": ()}
            outs = list(pool.map(lambda n: contribute(n, *extras[n]), INPUTS))
        assert all(len(o["seats"]) == 5 and o["round"] == 1 for o in outs)
        assert {p for o in outs for p in o["seats"]} == {n.peer_id for n in rerun_nodes}

        _wait_status(cluster, requester, task_id, "finalized", 120)
        print(f"dispute settled {time.monotonic() - t0:.1f} s after it was raised")
        res = cluster.dnode(requester, "task", "result", str(task_id))
        assert res["value_scaled"] == expected.value and res["final"]

        # upheld: the original signers share the reward, the re-execution signers the bond
        # (= the reward: a re-execution is paid the reward whichever way it reports)
        credits, rerun_credits = [], []
        for n in nodes:
            bal = cluster.dnode(n.member, "balance")
            assert bal["locked"] == 0
            (rerun_credits if n in rerun_nodes else credits).append(bal["credits"])
        assert sum(credits) == REWARD and min(credits) == REWARD // 3
        assert sum(rerun_credits) == BOND
        assert cluster.dnode(requester, "balance")["credits"] == 0

        # each re-execution seat stored only its own fresh share vector of each owner
        for n in rerun_nodes:
            d = n.member.home / "state" / f"task-{task_id}-rerun"
            shares = [json.loads(f.read_text()) for f in d.glob("shares-*.json")]
            assert len(shares) == 3 and all(c["round"] == 1 for c in shares)
            assert len({c["seat"] for c in shares}) == 1
        for n in nodes:
            text = n.log_path.read_text()
            assert "Traceback" not in text, text[-3000:]
