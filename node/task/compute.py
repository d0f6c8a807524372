"""Step 4, compute: the task's engine evaluates (or a result stored before a restart is kept)."""

from __future__ import annotations

import logging
from typing import Any

from dnode.node.engines import engine_for
from dnode.node.engines.base import result_record
from dnode.node.task.context import NodeContext, Session
from dnode.node.task.state import TaskRuntime
from dnode.scheduler.programs import TaskParams, get_program

log = logging.getLogger("dnode.node")


def prepare(ctx: NodeContext, rt: TaskRuntime, params: TaskParams) -> Any:
    """The engine's view of the params (NodeError: this node refuses the task)."""
    spec = get_program(params.program)
    return engine_for(spec).prepare(spec, params, ctx.task_dir(rt.task_id, rt.round))


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
    spec = get_program(params.program)
    engine = engine_for(spec)
    prepared = engine.prepare(spec, params, ctx.task_dir(rt.task_id, rt.round))
    raw = await engine.compute(prepared, Session(ctx, rt, peers, deadline))
    result = engine.encode_result(spec, raw)
    record = result_record(result, raw)
    if rt.transcript is not None:  # node.mpc.commitments: co-signers' tags are checked on it
        record["transcript"] = rt.transcript.hex()
    ctx.state.save_result(rt.task_id, rt.round, result, record)
    ctx.save(rt.task_id, "result.json", record, rt.round)
    return result, record
