"""node.he_worker: the push policy, and the HE compute step on good and on malformed inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import trio

from dnode.node import he_worker
from dnode.node.he import HeError, decrypt_result, keccak256, prepare_task
from dnode.node.he.params import CKKS_RTOL_ATOL
from dnode.node.he_worker import HeWorker
from dnode.node.task.state import TaskRuntime, TaskState
from dnode.scheduler.programs import TaskParams

OWNER = "0x" + "11" * 20
V = np.linspace(-3, 7, 50)


def _worker(tmp_path, rts):
    return HeWorker(
        SimpleNamespace(peer_id="me"),
        tmp_path / "state",
        lambda i: rts.get(i),
        lambda: list(rts.values()),
        eval_timeout=120,
    )


def _runtime(task_id, params, seat=0):
    rt = TaskRuntime(task_id)
    rt.params, rt.seat = params, seat
    return rt


def test_push_policy_only_declared_blobs_of_seated_tasks(tmp_path, monkeypatch):
    monkeypatch.setattr(he_worker, "SEAT_GRACE", 0.3)
    prep = prepare_task("he.mean", {}, {"x": V}, tmp_path / "keys")
    params = TaskParams(program="he.mean", owners=(OWNER,), extra=prep.task.to_extra())

    async def main():
        rts = {1: _runtime(1, params)}
        w = _worker(tmp_path, rts)
        ctx = prep.task.context
        assert await w.accept_push("p", ctx.digest, ctx.size)
        assert not await w.accept_push("p", ctx.digest, ctx.size + 1)  # not the declared size
        assert not await w.accept_push("p", b"\1" * 32, 10)  # not declared by any task
        rts[1].seat = None
        assert not await w.accept_push("p", ctx.digest, ctx.size)  # no seat here
        rts[1].seat = 0
        rts[1].advance(TaskState.CLOSED)
        assert not await w.accept_push("p", ctx.digest, ctx.size)  # task over

    trio.run(main)


def test_compute_good_and_malformed_input(tmp_path):
    prep = prepare_task("he.mean", {}, {"x": V}, tmp_path / "keys")
    good = TaskParams(program="he.mean", owners=(OWNER,), extra=prep.task.to_extra())
    # a requester declaring garbage (digest and size match the bytes, the bytes do not parse)
    garbage = b"\x00not a tensor blob" * 100
    extra = prep.task.to_extra()
    extra["he"]["inputs"]["x"].update(digest="0x" + keccak256(garbage).hex(), size=len(garbage))
    bad = TaskParams(program="he.mean", owners=(OWNER,), extra=extra)

    async def main():
        rts = {1: _runtime(1, good), 2: _runtime(2, bad)}
        w = _worker(tmp_path, rts)
        for d, b in prep.blobs.items():
            w.store.put(b, d)
        w.store.put(garbage)
        report, record = await w.compute(rts[1], good, ["me"], tmp_path)
        blob = w.store.get(bytes.fromhex(record["result_digest"][2:]))
        got = decrypt_result(
            report, blob, key_dir=tmp_path / "keys", context_digest=prep.task.context.digest
        )
        np.testing.assert_allclose(got, V.mean(), rtol=CKKS_RTOL_ATOL[0], atol=CKKS_RTOL_ATOL[1])
        with pytest.raises(HeError, match="(?i)malformed|parse|blob"):
            await w.compute(rts[2], bad, ["me"], tmp_path)

    trio.run(main)
