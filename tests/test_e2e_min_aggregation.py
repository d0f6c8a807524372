"""Issue 13, finding 8 end to end: a task whose inputs aggregate fewer values than it requires
is never computed -- every node declines with the reason, `dnode task status` shows it, and the
requester gets a refund at once; `dnode task post` refuses a single-owner task unless told
otherwise.

Real processes: devnet chain, 3 nodes, the requester's and owners' CLI invocations."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnode.cli.devcluster import ClusterError, DevCluster

pytestmark = pytest.mark.slow

INPUTS = {"owner-a": ["34", "51", "29"], "owner-b": ["71", "23", "56", "40"]}


def test_below_the_minimum_nodes_decline_and_say_why(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}

        # the CLI refuses to publish one owner's data unless the requester says so
        with pytest.raises(ClusterError, match="publishes a result of that owner's data alone"):
            cluster.post_mpc(requester, [owners["owner-a"]], program="mpc.sum")
        with pytest.raises(ClusterError, match="cannot meet --min-owners 3"):
            cluster.post_mpc(requester, list(owners.values()), extra=["--min-owners", "3"])

        # 7 values arrive, the task requires 20: nobody computes, everybody declines
        task_id = cluster.post_mpc(
            requester, list(owners.values()), program="mpc.sum", extra=["--min-values", "20"]
        )
        files = cluster.write_inputs(INPUTS)
        cluster.contribute_all(task_id, owners, files)
        chain = cluster.reader()  # a majority declined: no quorum is possible
        cluster.watch(
            lambda: bin(chain.task_info(task_id).declined_bitmap).count("1") >= 2,
            "a majority of seats declined",
            180,
        )
        status = cluster.dnode(requester, "task", "status", str(task_id))
        assert len(status["declines"]) >= 2, status
        reasons = [d["reason"] for d in status["declines"]]
        assert all("aggregate too small: 2/2 owners, 7/20 values" in r for r in reasons), reasons
        # refunded at once (nobody slashed), the reasons stay visible
        out = cluster.dnode(requester, "task", "cancel", str(task_id))
        assert out["reason"] == "market: too many declines", out
        status = cluster.dnode(requester, "task", "status", str(task_id))
        assert status["status"] == "refunded" and len(status["declines"]) >= 2, status
        for n in nodes:
            assert "MPC party" not in n.log_path.read_text(), "a node started computing"
