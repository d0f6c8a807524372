"""Operating a node: reorgs on anvil, metrics, `dnode status`, JSON logs, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from dnode.cli.devcluster import BlockTicker, DevCluster, NodeProc, anvil_path
from dnode.node.metrics import parse_metrics
from dnode.oracle.encoding import AggregateResult
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
        nodes = cluster.start_nodes(
            [f"node-{i}" for i in range(1, 4)], extra_args=["--confirmations", "3"]
        )
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


def _children(pid: int) -> set[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(d.name))
    return out


def test_status_metrics_json_logs_and_sigterm_during_mpc(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        node = cluster.start_node("node-1", extra_args=["--log-format", "json"])
        others = cluster.start_nodes(["node-2", "node-3"])
        m = node.member
        assert node.metrics and node.metrics.startswith("http://127.0.0.1:")

        deadline = time.monotonic() + 60
        while (got := _metrics(node)).get("dnode_stake_wei", 0) == 0:
            assert time.monotonic() < deadline, got
            time.sleep(0.5)
        assert got["dnode_stake_wei"] == 2 * 10**18
        assert got["dnode_head_block"] >= got["dnode_confirmed_block"] >= 0
        assert got["dnode_peers"] >= 1 and got["dnode_rpc_requests_total"] > 0
        assert 'dnode_tasks{state="watching"}' in got

        st = cluster.dnode(m, "status")
        assert st["running"] is True and "stale" not in st
        assert st["peer_id"] == node.peer_id and st["address"] == m.address
        assert st["stake_wei"] == 2 * 10**18 and st["tasks"]["computing"] == 0

        # a task whose third seat dies once the committee formed: the other two start their
        # MPC parties, which wait for the missing party (up to --mpc-timeout)
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}
        task_id = cluster.post_mpc(requester, list(owners.values()))
        st = cluster.wait_status(requester, task_id, "computing", timeout=120)
        assert st["status"] == "computing", f"committee did not form: {st['status']}"
        cluster.kill_node(others[1])
        files = cluster.write_inputs(INPUTS)
        with ThreadPoolExecutor(len(owners)) as pool:  # seat 3 is unreachable: check=False
            for name, owner in owners.items():
                args = ["task", "contribute", str(task_id), "--inputs", str(files[name])]
                args += ["--bootstrap", cluster.bootstrap()[0]]
                pool.submit(cluster.dnode, owner, *args, check=False)
        deadline = time.monotonic() + 120
        while "MPC party" not in node.log_path.read_text():
            assert time.monotonic() < deadline, "node-1 never started its MPC party"
            time.sleep(0.5)
        children = _descendants(node.proc.pid)  # the party (forked by the party fork server)
        assert children, "the MPC party child process is running"
        assert _metrics(node)['dnode_tasks{state="computing"}'] == 1

        os.kill(node.proc.pid, signal.SIGTERM)
        assert node.proc.wait(60) == 0
        for pid in children:  # the MPC party went with it
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
        with pytest.raises(ProcessLookupError):  # nothing left in its process group
            os.killpg(node.proc.pid, 0)

        # every log line on stderr was one JSON object
        records = [json.loads(ln) for ln in node.log_path.read_text().splitlines() if ln.strip()]
        assert {"ts", "level", "logger", "msg"} <= set(records[0])
        assert any("serving as peer" in r["msg"] for r in records)
        assert any("received SIGTERM" in r["msg"] for r in records)
        assert records[-1]["msg"] == "node stopped"

        st = cluster.dnode(m, "status")
        assert st["running"] is False and st["stale"] is True


def _descendants(pid: int) -> set[int]:
    """Child processes of ``pid``, their children, and so on."""
    out, todo = set(), [pid]
    while todo:
        kids = _children(todo.pop()) - out
        out |= kids
        todo.extend(kids)
    return out


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
