"""The whole network as separate OS processes: chain, 3 nodes, a requester, 3 data owners.

Asserts the attested on-chain result, the payouts, and that no node ever held a plaintext input.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import trio

from dnode.cli.devcluster import DevCluster
from dnode.node.mpc.sharing import reconstruct
from dnode.node.peer_client import ephemeral_host
from dnode.node.protocol import PROTO_ANNOUNCE, PROTO_SHARES, loads
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.programs import TaskParams

pytestmark = pytest.mark.slow

INPUTS = {
    "owner-a": ["34", "51", "29", "62", "45", "38"],
    "owner-b": ["71", "23", "56", "40"],
    "owner-c": ["33", "48", "67", "52", "39"],
}
REWARD = 3 * 10**17


async def _send_junk(bootstrap: str, peer: str) -> list[dict]:
    """Malformed and unauthenticated messages a node must drop while it keeps serving."""
    replies = []
    async with ephemeral_host([bootstrap]) as host:
        for proto, payload in [
            (PROTO_SHARES, b"\xff\x00not json"),
            (PROTO_SHARES, json.dumps({"task_id": 1, "shares": [1, 2]}).encode()),
            (PROTO_ANNOUNCE, json.dumps({"task_id": 99, "params": "0x00"}).encode()),
        ]:
            replies.append(loads(peer, await host.request(peer, proto, payload, timeout=10)))
    return replies


def test_mpc_mean_end_to_end(tmp_path: Path) -> None:
    run_mpc_mean(DevCluster(tmp_path, engine="devnet", challenge_period=4))  # dnode chain


def run_mpc_mean(cluster: DevCluster) -> None:
    """The scenario, against whichever chain engine ``cluster`` runs (devnet or anvil)."""
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in INPUTS}
        boot = cluster.bootstrap()[0]

        # a node drops junk and keeps serving
        replies = trio.run(_send_junk, boot, nodes[0].peer_id)
        assert all(r["ok"] is False for r in replies), replies

        task_id = cluster.post_mpc(requester, list(owners.values()))
        files = cluster.write_inputs(INPUTS)
        outs = list(cluster.contribute_all(task_id, owners, files).values())
        assert all(len(o["seats"]) == 3 for o in outs)

        res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "240")
        everything = [Fraction(v) for vs in INPUTS.values() for v in vs]
        expected = AggregateResult.from_fraction(sum(everything) / len(everything), len(everything))
        assert res["value_scaled"] == expected.value
        assert res["count"] == len(everything)

        # finalized after the challenge window; each of the 3 seats earned a third of the reward
        status = cluster.wait_status(requester, task_id, "finalized", timeout=90)
        assert status["status"] == "finalized", status
        assert sorted(status["seats"]) == sorted(n.member.address for n in nodes)
        for n in nodes:
            bal = cluster.dnode(n.member, "balance")
            assert bal["credits"] == REWARD // 3
            assert bal["locked"] == 0
        before = cluster.dnode(nodes[0].member, "balance")["balance"]
        out = cluster.dnode(nodes[0].member, "withdraw")
        assert out["withdrawn"] == REWARD // 3
        after = cluster.dnode(nodes[0].member, "balance")
        assert after["credits"] == 0 and after["balance"] > before

        # privacy: each node stored only its own share vector of each owner's values
        t, m = 1, 3
        held: dict[str, dict[int, list[int]]] = {}
        for n in nodes:
            d = n.member.home / "state" / f"task-{task_id}"
            for f in d.glob("shares-*.json"):
                c = json.loads(f.read_text())
                held.setdefault(c["owner"].lower(), {})[c["seat"]] = c["shares"]
                assert "values" not in c and set(c) >= {"shares", "seat", "modulus", "signature"}
        assert len(held) == 3
        for name, m_ in owners.items():
            by_seat = held[m_.address.lower()]
            assert sorted(by_seat) == list(range(m))
            # the owner's encoding under the task's (default) column schema
            plain = TaskParams("mpc.mean", (m_.address,)).encode_values(INPUTS[name])
            modulus = json.loads(
                next(
                    (nodes[0].member.home / "state" / f"task-{task_id}").glob("shares-*.json")
                ).read_text()
            )["modulus"]
            for seat, shares in by_seat.items():
                # what one node holds is not the plaintext and contains none of its values
                assert [s % modulus for s in shares] != [p % modulus for p in plain]
                assert not {p % modulus for p in plain} & set(shares), f"seat {seat} saw a value"
            # but any t+1 seats together reconstruct: the stored data are genuine shares
            got = reconstruct({0: by_seat[0], 2: by_seat[2]}, t, modulus)
            got = [g if g < modulus // 2 else g - modulus for g in got]
            # the values, then the owner's influence witness (bits; node.mpc.influence)
            assert got[: len(plain)] == plain and set(got[len(plain) :]) <= {0, 1}
        # the nodes' logs show no plaintext input file was ever read by a node process
        for n in nodes:
            text = n.log_path.read_text()
            assert "Traceback" not in text, text[-3000:]
