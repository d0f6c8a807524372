"""A private result end to end (issue 15): separate OS processes for the chain, 3 nodes, a
requester and 3 data owners. Only the requester reads the mean; the chain holds a digest; no
node's log or state holds the result in the clear; another account cannot open it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from dnode.cli.devcluster import ClusterError, DevCluster
from dnode.contracts.client import TaskStatus
from dnode.oracle.codecs import PrivateCodec
from dnode.oracle.encoding import AggregateResult
from tests.test_e2e_capture import holds_number

pytestmark = pytest.mark.slow

# a sum no log line, share or encoding would show by accident: 9_876_541 + ... = 19_753_094
INPUTS = {
    "owner-a": ["9876541", "12"],
    "owner-b": ["9876540", "0"],
    "owner-c": ["1", "0"],
}


def test_only_the_requester_reads_a_private_mean(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}
        boot = cluster.bootstrap()[0]
        task_id = cluster.post_mpc(requester, list(owners.values()), extra=["--private-result"])
        cluster.contribute_all(task_id, owners, cluster.write_inputs(INPUTS))

        res = cluster.dnode(
            requester, "task", "result", str(task_id), "--wait", "240", "--bootstrap", boot
        )
        values = [Fraction(v) for vs in INPUTS.values() for v in vs]
        total = sum(values)
        expected = AggregateResult.from_fraction(total / len(values), len(values))
        assert res["private"] is True and res["value_scaled"] == expected.value, res
        assert res["count"] == len(values)

        # the chain holds the digest of the sealed boxes, not the value
        chain = cluster.reader()
        status, _, report = chain.result_of(task_id)
        assert status in (TaskStatus.REPORTED, TaskStatus.FINALIZED)
        sealed = PrivateCodec().decode(report)
        assert "0x" + sealed.blob_digest.hex() == res["result_digest"]

        # another account holding the params cannot open it
        kept = next((requester.home / "params").glob(f"*-{task_id}.json"), None)
        assert kept is not None
        with pytest.raises(ClusterError, match="sealed to another account's key"):
            cluster.dnode(
                owners["owner-a"], "task", "result", str(task_id), "--params", str(kept),
                "--bootstrap", boot,
            )  # fmt: skip

        # no node log or state file holds the result: not the sum, not the mean
        mean = expected.texts()[0]
        for n in nodes:
            blobs = [n.log_path, *[p for p in n.member.home.rglob("*") if p.is_file()]]
            for f in blobs:
                data = f.read_bytes()
                assert not holds_number(data, str(total)), f
                assert not holds_number(data, mean), f
            assert "Traceback" not in n.log_path.read_text()
        cluster.wait_status(requester, task_id, "finalized", timeout=90)
