"""The node side of HE tasks: blob store and push policy, input wait, isolated evaluation.

The task steps (``node.task``) own the lifecycle (seat, committee, signatures, report,
finalize); for an HE task the compute step's engine (``node.engines.he.HeEngine``) calls
:meth:`HeWorker.compute` where an MPC task runs its MPyC party. This module never holds a
secret key: what it stores is the requester's public context and ciphertexts (pushed by the
requester once the committee formed, or fetched from another seat holder), each checked
against the digest and size declared in the on-chain-hashed task parameters, and the result
ciphertext blob, which it keeps serving to the requester.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from dnode.node.blobs import BlobError, BlobStore, fetch_into, serve_blobs
from dnode.node.errors import P2PError
from dnode.node.he import (
    HeError,
    HeTask,
    encode_report,
    evaluate_isolated,
    job_spec,
)
from dnode.node.he.errors import ContextNotPublic, DigestMismatch, EvaluationFailed
from dnode.node.task.state import TaskRuntime, TaskState
from dnode.node.transport import Transport
from dnode.scheduler.programs import CAP_HE, TaskParams

log = logging.getLogger("dnode.node.he")

SEAT_GRACE = 15.0  # seconds a push may precede our own view of the seat we hold
REFETCH_EVERY = 5.0  # seconds between attempts to fetch missing blobs from other seat holders
EVAL_TIMEOUT = 600.0
MAX_BLOB = 1 << 30


def is_he(params: TaskParams | None) -> bool:
    return params is not None and params.capability == CAP_HE


class HeWorker:
    """One per daemon: serves ``state/blobs`` on ``/dnode/blob/1.0.0`` and computes HE tasks."""

    def __init__(
        self,
        host: Transport,
        state_dir: Path,
        lookup: Callable[[int], TaskRuntime | None],
        tasks: Callable[[], list[TaskRuntime]],
        *,
        eval_timeout: float = EVAL_TIMEOUT,
    ) -> None:
        self.host = host
        self.store = BlobStore(state_dir / "blobs", max_blob=MAX_BLOB)
        self._lookup = lookup
        self._tasks = tasks
        self.eval_timeout = eval_timeout

    def serve(self) -> None:
        serve_blobs(self.host, self.store, accept_push=self.accept_push)

    # ---- params -------------------------------------------------------------------------

    @staticmethod
    def validate(task_id: int, params: TaskParams) -> HeTask | None:
        """The task's HE parameters, fully checked; None (logged) if a node must refuse it."""
        try:
            return HeTask.from_task_params(params)
        except HeError as e:
            log.warning("task %d: HE parameters refused: %s", task_id, e)
            return None

    def _declared(self, digest: bytes) -> list[tuple[TaskRuntime, int]]:
        """(task, declared size) of every open HE task we know that lists ``digest``."""
        out = []
        for rt in self._tasks():
            if not is_he(rt.params) or rt.is_closed():
                continue
            assert rt.params is not None
            try:
                blobs = HeTask.from_task_params(rt.params).blobs()
            except HeError:
                continue
            if digest in blobs:
                out.append((rt, blobs[digest]))
        return out

    async def accept_push(self, peer: str, digest: bytes, size: int) -> bool:
        """Accept a push only of a blob an HE task we hold a seat in declares, at its size."""
        matches = [(rt, n) for rt, n in self._declared(digest) if n == size]
        if not matches:
            log.warning(
                "blob push 0x%s (%d bytes) from %s refused: no open HE task here declares it",
                digest.hex()[:16],
                size,
                peer,
            )
            return False
        with trio.move_on_after(SEAT_GRACE):  # the push may race our own CommitteeFormed event
            while not any(rt.seat is not None for rt, _ in matches):
                await trio.sleep(0.2)
        if not any(rt.seat is not None for rt, _ in matches):
            log.warning("blob push 0x%s from %s refused: no seat here", digest.hex()[:16], peer)
            return False
        return True

    # ---- compute ------------------------------------------------------------------------

    async def _wait_blobs(self, rt: TaskRuntime, task: HeTask, peers: list[str]) -> None:
        """Until every declared blob is in the store: pushed to us, or fetched from a peer."""
        want = task.blobs()
        others = [p for p in peers if p != self.host.peer_id]
        next_fetch = trio.current_time() + REFETCH_EVERY  # pushes normally arrive first
        while missing := {d: n for d, n in want.items() if not self.store.has(d)}:
            if trio.current_time() < next_fetch:
                await trio.sleep(0.2)
                continue
            for d, n in missing.items():
                try:
                    await fetch_into(self.host, others, d, self.store, max_size=n, timeout=30)
                    log.info("task %d: fetched blob 0x%s from a peer", rt.task_id, d.hex()[:16])
                except (BlobError, P2PError) as e:
                    log.debug("task %d: blob 0x%s not yet available: %s", rt.task_id, d.hex(), e)
            next_fetch = trio.current_time() + REFETCH_EVERY

    async def compute(
        self, rt: TaskRuntime, params: TaskParams, peers: list[str], task_dir: Path
    ) -> tuple[bytes, dict[str, Any]]:
        """Wait for the inputs, evaluate in a child process; returns (report bytes, record)."""
        task = HeTask.from_task_params(params)  # HeError: refuse (the daemon logs one line)
        with trio.move_on_after(params.input_timeout):
            await self._wait_blobs(rt, task, peers)
        missing = [d for d in task.blobs() if not self.store.has(d)]
        if missing:
            raise EvaluationFailed(
                f"task {rt.task_id}: {len(missing)} of {len(task.blobs())} input blobs not "
                f"received within {params.input_timeout} s"
            )
        for d, n in task.blobs().items():
            if self.store.size(d) != n:  # the store verified the digest; sizes follow from it
                raise DigestMismatch(f"stored blob 0x{d.hex()} is not {n} bytes")
        out = task_dir / "he-result.bin"
        job = job_spec(
            task.program,
            task.args,
            task.params,
            self.store.path(task.context.digest),
            {k: self.store.path(i.blob.digest) for k, i in task.inputs.items()},
            task.specs,
            out,
        )
        rt.advance(TaskState.COMPUTING)
        log.info("task %d: HE evaluation of %s starting", rt.task_id, task.program)
        t0 = trio.current_time()
        try:
            digest = await evaluate_isolated(job, timeout=self.eval_timeout)
        except ContextNotPublic:
            # a node never keeps a secret key, not even one a requester handed over by mistake
            self.store.delete(task.context.digest)
            raise
        blob = out.read_bytes()
        if self.store.put(blob) != digest:
            raise EvaluationFailed("the evaluator's result does not hash to its reported digest")
        out.unlink(missing_ok=True)
        log.info(
            "task %d: HE done in %.2f s, result 0x%s (%d bytes)",
            rt.task_id,
            trio.current_time() - t0,
            digest.hex()[:16],
            len(blob),
        )
        report = encode_report(digest)
        record = {
            "result": "0x" + report.hex(),
            "result_digest": "0x" + digest.hex(),
            "result_size": len(blob),
            "program": task.program,
        }
        return report, record
