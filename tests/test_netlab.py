"""A task across hosts: every user on its own network namespace (scripts/netlab.py), with
50 ms round trips, jitter and 1% packet loss between them, and the lab torn down after.

Opt-in (root, /dev/net/tun, iproute2): ``pytest -m multihost tests/test_netlab.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

import dnode
from dnode.cli.devcluster import DevCluster
from dnode.oracle.encoding import AggregateResult
from tests.script_module import load_script
from tests.test_e2e import INPUTS, REWARD

pytestmark = [pytest.mark.multihost, pytest.mark.slow]

SCRIPT = Path(dnode.IMPORT_ROOT) / "scripts" / "netlab.py"

if os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or shutil.which("ip") is None:
    pytest.skip("netlab needs root, /dev/net/tun and iproute2", allow_module_level=True)


def _netlab() -> ModuleType:
    return load_script("netlab", SCRIPT)


def test_task_finalizes_across_hosts(tmp_path: Path) -> None:
    netlab = _netlab()
    nodes_names = [f"node-{i}" for i in range(1, 4)]
    hosts = ["chain", "requester", *INPUTS, *nodes_names]
    lab = netlab.NetLab(hosts, rtt_ms=50, jitter_ms=5, loss=0.01, seed=19)
    with lab:
        assert len(netlab.ours()) == len(hosts)
        with lab.entered("requester"):
            cluster = DevCluster(
                tmp_path, challenge_period=4, placement=lab.placement(default="requester")
            )
            with cluster.running():
                assert cluster.rpc_url.startswith(f"http://{lab.host('chain').address}:")
                nodes = cluster.start_nodes(nodes_names)
                for n in nodes:  # each node runs, and listens, on its own host
                    assert n.proc.pid in lab.pids(n.member.name)
                    assert n.addrs[0].startswith(f"/ip4/{lab.host(n.member.name).address}/tcp/")
                assert cluster.chain_proc is not None
                assert cluster.chain_proc.pid in lab.pids("chain")
                requester = cluster.member("requester")
                owners = {n: cluster.member(n) for n in INPUTS}

                task_id = cluster.post_mpc(requester, list(owners.values()))
                files = cluster.write_inputs(INPUTS)
                outs = cluster.contribute_all(task_id, owners, files)
                assert all(len(o["seats"]) == 3 for o in outs.values())

                res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "300")
                everything = [Fraction(v) for vs in INPUTS.values() for v in vs]
                expected = AggregateResult.from_fraction(
                    sum(everything) / len(everything), len(everything)
                )
                assert res["value_scaled"] == expected.value
                status = cluster.wait_status(requester, task_id, "finalized", timeout=180)
                assert status["status"] == "finalized", status
                for n in nodes:
                    assert cluster.dnode(n.member, "balance")["credits"] == REWARD // 3
                    assert "Traceback" not in n.log_path.read_text()
        time.sleep(1.2)  # the router writes its counters every second
        stats = lab.router_stats()
        # the traffic went through the router, and it did drop packets
        assert stats["forwarded"] > 1000 and stats["dropped_loss"] > 0, stats
        assert 0.002 < stats["dropped_loss"] / stats["received"] < 0.03, stats
        router = lab._router
        assert router is not None
    # torn down: no namespace, no router, no process of the cluster left
    assert netlab.ours() == []
    assert router.poll() is not None
    assert all(not n.alive for n in nodes) and cluster.chain_proc.poll() is not None


def test_sigterm_tears_the_lab_down() -> None:
    """The self-test, stopped by SIGTERM while its hosts are up: no namespace survives."""
    netlab = _netlab()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--hosts", "2", "--samples", "100000", "--rtt", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    prefix = f"{netlab.PREFIX}{proc.pid}-"
    deadline = time.monotonic() + 60
    while len(list(netlab.NETNS_DIR.glob(prefix + "*"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(2)  # inside the measurement: a probe process runs in a host
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert list(netlab.NETNS_DIR.glob(prefix + "*")) == []
    assert "namespaces left: []" in err
