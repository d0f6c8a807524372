"""Operating a node: reorgs on anvil, metrics, `dnode status`, JSON logs, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from cli.devcluster import BlockTicker, DevCluster, NodeProc, anvil_path
from node.metrics import parse_metrics
from oracle.encoding import AggregateResult
from tests.test_e2e import INPUTS

pytestmark = pytest.mark.slow


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())
    assert "error" not in out, out
    return out["result"]


def post(cluster: DevCluster, requester: Any, owners: list[Any], reward: str) -> dict[str, Any]:
    args = ["task", "post", "--program", "mpc.mean", "--reward", reward]
    args += ["--bootstrap", cluster.bootstrap()[0]]
    for m in owners:
        args += ["--owner", m.address]
    return cluster.dnode(requester, *args)


def test_a_task_reorged_out_is_never_acted_on(tmp_path: Path) -> None:
    anvil_path()
    cluster = DevCluster(tmp_path, engine="anvil", challenge_period=4)
    with cluster.running():
        nodes = [
            cluster.start_node(f"node-{i}", extra_args=["--confirmations", "3"])
            for i in range(1, 4)
        ]
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}

        # no blocks but our own: the orphan can never reach 3 confirmations before the reorg
        assert cluster.ticker is not None
        cluster.ticker.stop()
        snap = rpc(cluster.rpc_url, "evm_snapshot")
        orphan = post(cluster, requester, [owners["owner-a"], owners["owner-b"]], "0.2ether")
        assert rpc(cluster.rpc_url, "evm_revert", snap) is True
        cluster.ticker = BlockTicker(cluster.rpc_url, 1.0).start()

        # the task id is posted again, with other owners: this one runs to its result
        task = post(cluster, requester, list(owners.values()), "0.3ether")
        assert task["task_id"] == orphan["task_id"] and task["tx"] != orphan["tx"]
        assert task["params_digest"] != orphan["params_digest"]
        files = cluster.write_inputs(INPUTS)
        cluster.contribute_all(task["task_id"], owners, files)
        res = cluster.dnode(requester, "task", "result", str(task["task_id"]), "--wait", "240")
        everything = [Fraction(v) for vs in INPUTS.values() for v in vs]
        expected = AggregateResult.from_fraction(sum(everything) / len(everything), len(everything))
        assert res["value_scaled"] == expected.value

        for n in nodes:
            text = n.log_path.read_text()
            assert f"(tx {task['tx']}); considering a seat" in text
            assert orphan["tx"] not in text  # never acted on, not even seen as confirmed
            assert "Traceback" not in text, text[-3000:]

        # a reorg deeper than the confirmation depth is detected and re-read
        marker = rpc(cluster.rpc_url, "evm_snapshot")
        target = int(rpc(cluster.rpc_url, "eth_blockNumber"), 16) + 6
        deadline = time.monotonic() + 60
        while min(_confirmed(n) for n in nodes) < target:
            assert time.monotonic() < deadline, "nodes did not follow the chain"
            time.sleep(0.5)
        cluster.ticker.stop()
        assert rpc(cluster.rpc_url, "evm_revert", marker) is True
        for _ in range(12):
            rpc(cluster.rpc_url, "evm_mine")
        deadline = time.monotonic() + 60
        while not all("chain reorg" in n.log_path.read_text() for n in nodes):
            assert time.monotonic() < deadline, "no node noticed the reorg"
            time.sleep(0.5)
        for n in nodes:
            assert _metrics(n)["dnode_reorgs_total"] >= 1


def _metrics(n: NodeProc) -> dict[str, float]:
    assert n.metrics
    with urllib.request.urlopen(n.metrics + "/metrics", timeout=10) as r:
        return parse_metrics(r.read().decode())


def _confirmed(n: NodeProc) -> float:
    return _metrics(n).get("dnode_confirmed_block", -1)


def test_status_metrics_json_logs_and_sigterm(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path)
    with cluster.running():
        node = cluster.start_node("node-1", extra_args=["--log-format", "json"])
        m = node.member
        assert node.metrics and node.metrics.startswith("http://127.0.0.1:")

        deadline = time.monotonic() + 60
        while (got := _metrics(node)).get("dnode_stake_wei", 0) == 0:
            assert time.monotonic() < deadline, got
            time.sleep(0.5)
        assert got["dnode_stake_wei"] == 2 * 10**18
        assert got["dnode_head_block"] >= got["dnode_confirmed_block"] >= 0
        assert got["dnode_peers"] == 0 and got["dnode_rpc_requests_total"] > 0
        assert 'dnode_tasks{state="watching"}' in got

        st = cluster.dnode(m, "status")
        assert st["running"] is True and "stale" not in st
        assert st["peer_id"] == node.peer_id and st["address"] == m.address
        assert st["stake_wei"] == 2 * 10**18 and st["tasks"]["computing"] == 0

        # every log line on stderr is one JSON object
        lines = [ln for ln in node.log_path.read_text().splitlines() if ln.strip()]
        records = [json.loads(ln) for ln in lines]
        assert {"ts", "level", "logger", "msg"} <= set(records[0])
        assert any("serving as peer" in r["msg"] for r in records)

        os.kill(node.proc.pid, signal.SIGTERM)
        assert node.proc.wait(60) == 0
        with pytest.raises(ProcessLookupError):  # nothing left in its process group
            os.killpg(node.proc.pid, 0)
        records = [json.loads(ln) for ln in node.log_path.read_text().splitlines() if ln.strip()]
        assert records[-1]["msg"] == "node stopped"
        assert not any(r["level"] == "ERROR" for r in records), records

        st = cluster.dnode(m, "status")
        assert st["running"] is False and st["stale"] is True
