"""Step 4, compute: the task's engine evaluates (or a result stored before a restart is kept).

The step knows no program and no capability: it asks ``engine_for(spec)`` and lends the engine
a :class:`node.engines.base.ComputeSession` over this task's runtime."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dnode.node.engines import engine_for
from dnode.node.engines.base import ComputeSession, PreparedTask
from dnode.node.task.context import NodeContext
from dnode.node.task.state import TaskRuntime, TaskState
from dnode.scheduler.programs import TaskParams

log = logging.getLogger("dnode.node")


class RuntimeFlag:
    """A condition over the task runtime, as the engine's ``Flag`` (test and wait)."""

    def __init__(self, rt: TaskRuntime, cond: Callable[[], bool]) -> None:
        self._rt, self._cond = rt, cond

    def is_set(self) -> bool:
        return self._cond()

    async def wait(self) -> None:
        await self._rt.until(self._cond)


def prepare(ctx: NodeContext, rt: TaskRuntime, params: TaskParams) -> PreparedTask:
    """The engine's view of the params (EngineRefused: this node refuses the task)."""
    spec = params.spec
    return engine_for(spec).prepare(spec, params, ctx.task_dir(rt.task_id, rt.round))


def session(ctx: NodeContext, rt: TaskRuntime, peers: list[str], deadline: int) -> ComputeSession:
    """What the engine borrows from the node for this committee's computation."""
    assert rt.seat is not None
    return ComputeSession(
        task_id=rt.task_id,
        round=rt.round,
        seat=rt.seat,
        peers=peers,
        deadline=deadline,
        host=ctx.host,
        inputs=rt.contributions,
        inputs_complete=RuntimeFlag(rt, rt.inputs_complete),
        chain_now=ctx.chain_now,
        started=lambda: rt.advance(TaskState.COMPUTING),
        abort=RuntimeFlag(rt, rt.declined),
        restored=rt.restored,
        attempt_timeout=ctx.cfg.mpc_timeout,
        executor=ctx.executor,
        blobs=ctx.he,
        observe=ctx.metrics.observe,
        namespace=f"{ctx.chain_id}:{ctx.contract.lower()}",
    )


async def compute(
    ctx: NodeContext, rt: TaskRuntime, params: TaskParams, peers: list[str], deadline: int
) -> tuple[bytes, dict[str, Any]]:
    """(result bytes, record); never recomputes a result stored before a restart."""
    stored = ctx.state.result(rt.task_id, rt.round)
    if stored is not None:  # computed before a restart: never recompute, never re-sign
        log.info("task %d: round %d result restored from the state db", rt.task_id, rt.round)
        kept = stored[1].get("transcript")
        rt.transcript = bytes.fromhex(kept) if kept else None
        return stored
    spec = params.spec
    engine = engine_for(spec)
    prepared = engine.prepare(spec, params, ctx.task_dir(rt.task_id, rt.round))
    raw = await engine.compute(prepared, session(ctx, rt, peers, deadline))
    result = engine.encode_result(spec, raw)
    record = {"result": "0x" + result.hex(), **raw.record}
    # node.mpc.commitments: co-signers' tags are checked on the session transcript (MPC)
    kept = record.get("transcript")
    rt.transcript = bytes.fromhex(kept) if kept else None
    ctx.state.save_result(rt.task_id, rt.round, result, record)
    ctx.save(rt.task_id, "result.json", record, rt.round)
    return result, record
