"""The HE engine: validate the task's HE parameters, wait for its blobs, evaluate isolated.

The node never holds a secret key: ``compute`` hands the public context and ciphertexts (in
the node's blob store, ``session.blobs``: a :class:`node.he_worker.HeWorker`) to an isolated
evaluator running the program's kernel (``node.he.ops``) and returns the report
``abi.encode(bytes32 result_digest, string locator)`` (the ``private`` codec).
"""

from __future__ import annotations

import time
from pathlib import Path

from dnode.node.engines.base import ComputeSession, EngineRefused, PreparedTask, RawResult
from dnode.node.he import HeError, HeTask
from dnode.scheduler.programs.params import TaskParams
from dnode.scheduler.programs.registry import ProgramSpec


class HeEngine:
    capability = "he"

    def prepare(self, spec: ProgramSpec, params: TaskParams, task_dir: Path) -> PreparedTask:
        try:
            task = HeTask.from_task_params(params)
        except HeError as e:
            raise EngineRefused(0, f"HE parameters refused: {e}") from None
        return PreparedTask(0, spec, params, task_dir, plan=task)

    async def compute(self, prepared: PreparedTask, session: ComputeSession) -> RawResult:
        if session.blobs is None:
            raise EngineRefused(session.task_id, "this node serves no HE blob store")
        t0 = time.monotonic()
        report, record = await session.blobs.compute(
            session.task_id, prepared.plan, prepared.params, session.peers, prepared.task_dir,
            session.started,
        )  # fmt: skip
        session.observe("he_seconds", time.monotonic() - t0)
        return RawResult(prepared, report, record)

    def encode_result(self, spec: ProgramSpec, raw: RawResult) -> bytes:
        return bytes(raw.data)  # already the private codec's report
