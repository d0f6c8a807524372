"""HE mode end to end, as separate OS processes: chain, 3 nodes (staked with mpc,he), a requester.

(1) ``he.mean`` of a CSV, (2) a logistic-regression scoring (``he.matmul`` with weights, bias
and a degree-3 sigmoid approximation), both through the ``dnode`` CLI; in between, forged
and undeclared blob pushes that a node must refuse while it keeps serving. Asserts: every
node computed the byte-identical result ciphertext (same digest, same signed report), the
decrypted result matches numpy within the documented CKKS bound, and no node ever held a
secret key.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import trio

from dnode.cli.devcluster import DevCluster, Member, NodeProc
from dnode.node.blobs import BLOB_PROTOCOL, _read_frame, _write_frame
from dnode.node.he.params import CKKS_RTOL_ATOL
from dnode.node.peer_client import ephemeral_host

pytestmark = pytest.mark.slow

RTOL, ATOL = CKKS_RTOL_ATOL
rng = np.random.default_rng(7)


def _post(cluster: DevCluster, who: Member, boot: str, *args: str) -> dict:
    return cluster.dnode(
        who, "task", "post", *args, "--reward", "0.3ether", "--bootstrap", boot, timeout=400
    )


def _result(cluster: DevCluster, who: Member, boot: str, task_id: int) -> dict:
    return cluster.dnode(
        who, "task", "result", str(task_id), "--wait", "300", "--bootstrap", boot, timeout=400
    )


def _wait_status(cluster: DevCluster, who: Member, task_id: int, want: str, timeout: float) -> None:
    st = cluster.wait_status(who, task_id, want, timeout=timeout)
    assert st["status"] == want, f"task {task_id} never became {want}: {st['status']}"


def _check_committee_agreed(nodes: list[NodeProc], task_id: int, res: dict) -> None:
    """Every node's saved result is the same ciphertext digest, which the chain attests."""
    records = []
    for n in nodes:
        d = n.member.home / "state" / f"task-{task_id}"
        rec = json.loads((d / "result.json").read_text())
        sig = json.loads((d / "signature.json").read_text())
        assert sig["result"] == rec["result"]
        # the node keeps the result blob in its store, under its digest, to serve it
        blob = n.member.home / "state" / "blobs" / rec["result_digest"][2:]
        assert blob.stat().st_size == rec["result_size"]
        records.append(rec)
    assert len({r["result_digest"] for r in records}) == 1, records
    assert len({r["result"] for r in records}) == 1
    assert records[0]["result_digest"] == res["result_digest"]


async def _forged_pushes(boot: str, peer: str, digest: bytes, size: int) -> list[dict]:
    """A push under a declared digest whose bytes do not hash to it, and an undeclared one."""
    replies = []
    async with ephemeral_host([boot]) as host:
        stream = await host.open_stream(peer, BLOB_PROTOCOL, timeout=20)
        await _write_frame(stream, {"op": "put", "digest": "0x" + digest.hex(), "size": size})
        head = await _read_frame(stream)
        assert head.get("ready") is True, head  # declared digest and size: the node takes it
        junk = os.urandom(size)
        for i in range(0, size, 1 << 18):
            await stream.write(junk[i : i + (1 << 18)])
        await stream.close_write()
        replies.append(await _read_frame(stream))
        await stream.close()

        stream = await host.open_stream(peer, BLOB_PROTOCOL, timeout=20)
        await _write_frame(stream, {"op": "put", "digest": "0x" + "ab" * 32, "size": 1000})
        replies.append(await _read_frame(stream))
        await stream.close()
    return replies


def test_he_end_to_end(tmp_path: Path) -> None:
    import tenseal as ts

    timings: dict[str, float] = {}
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)], capabilities="mpc,he")
        requester = cluster.member("requester")
        boot = cluster.bootstrap()[0]

        # (1) encrypted mean of a CSV column
        values = rng.normal(50, 12, size=200).round(3)
        csv = tmp_path / "values.csv"
        csv.write_text("value\n" + "\n".join(map(str, values)) + "\n")
        t0 = time.monotonic()
        posted = _post(cluster, requester, boot, "--program", "he.mean", "--data", str(csv))
        mean_id = posted["task_id"]
        assert len(posted["uploaded_to"]) == 3
        res = _result(cluster, requester, boot, mean_id)
        timings["he.mean post..result"] = time.monotonic() - t0
        np.testing.assert_allclose(res["values"], values.mean(), rtol=RTOL, atol=ATOL)
        _check_committee_agreed(nodes, mean_id, res)
        contexts = [posted["context_digest"]]

        # (2) logistic scoring sigmoid(x W + b), deg-3 approximation; posted without upload
        feats = rng.normal(0, 1, size=(8, 4)).round(4)
        w = rng.normal(0, 0.5, size=(4, 2)).round(4)
        b = [0.1, -0.2]
        coeffs = [0.5, 0.197, 0, -0.004]
        (tmp_path / "features.csv").write_text(
            "\n".join(",".join(map(str, r)) for r in feats) + "\n"
        )
        (tmp_path / "weights.csv").write_text("\n".join(",".join(map(str, r)) for r in w) + "\n")
        t0 = time.monotonic()
        posted = _post(
            cluster,
            requester,
            boot,
            "--program",
            "he.matmul",
            "--data",
            f"x={tmp_path / 'features.csv'}",
            "--arg",
            f"matrix=@{tmp_path / 'weights.csv'}",
            "--arg",
            f"bias={json.dumps(b)}",
            "--args",
            json.dumps({"poly": coeffs}),
            "--no-upload",
        )
        model_id = posted["task_id"]
        contexts.append(posted["context_digest"])
        assert posted["uploaded_to"] == []
        _wait_status(cluster, requester, model_id, "computing", 120)

        # bad input: forged bytes under the declared context digest, and an undeclared blob
        replies = trio.run(
            _forged_pushes,
            boot,
            nodes[0].peer_id,
            bytes.fromhex(posted["context_digest"][2:]),
            posted["context_bytes"],
        )
        assert replies[0]["ok"] is False and "hashes to" in replies[0]["error"], replies
        assert replies[1] == {"ok": False, "error": "push not accepted"}, replies
        assert not (
            nodes[0].member.home / "state" / "blobs" / posted["context_digest"][2:]
        ).exists()

        # the node keeps serving: the genuine upload and the task go through
        up = cluster.dnode(
            requester, "task", "upload", str(model_id), "--bootstrap", boot, timeout=400
        )
        assert len(up["uploaded_to"]) == 3
        res = _result(cluster, requester, boot, model_id)
        timings["he.matmul+sigmoid post..result"] = time.monotonic() - t0
        z = feats @ w + b
        expected = 0.5 + 0.197 * z - 0.004 * z**3
        got = np.asarray(res["values"])
        assert got.shape == (8, 2)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
        _check_committee_agreed(nodes, model_id, res)

        # no node ever held a secret key: each stored context is public, no key files anywhere
        for n in nodes:
            store = n.member.home / "state" / "blobs"
            for digest in contexts:
                ctx = ts.context_from((store / digest[2:]).read_bytes())
                assert not ctx.is_private() and not ctx.has_secret_key()
            assert not list(n.member.home.rglob("*.seal"))
            assert not (n.member.home / "he-keys").exists()
            text = n.log_path.read_text()
            assert "Traceback" not in text, text[-3000:]
        assert "rejected" in nodes[0].log_path.read_text()
        # ... while the requester's secret keys are private files in a private directory
        keys = list((requester.home / "he-keys" / "he").glob("*.seal"))
        assert len(keys) == 2
        for k in keys:
            assert stat.S_IMODE(k.stat().st_mode) == 0o600
            assert ts.context_from(k.read_bytes()).is_private()
        assert stat.S_IMODE((requester.home / "he-keys").stat().st_mode) == 0o700

        _wait_status(cluster, requester, model_id, "finalized", 90)
    print("timings:", {k: round(v, 1) for k, v in timings.items()})
