"""Step 1, announce: a task's params, learnt by gossip, direct announce or fetch, checked
against the on-chain digest."""

from __future__ import annotations

import logging

import trio

from dnode.contracts.client import TaskStatus
from dnode.contracts.errors import ContractsError
from dnode.node.errors import NodeError, ProtocolViolation
from dnode.node.protocol import (
    PROTO_PARAMS,
    TOPIC_TASKS,
    Announcement,
    dumps,
    error,
    loads,
    ok,
)
from dnode.node.task.context import NodeContext
from dnode.node.task.state import TaskRuntime
from dnode.scheduler.errors import SchedulerError
from dnode.scheduler.programs import TaskParams

log = logging.getLogger("dnode.node")


async def accept_params(
    ctx: NodeContext, task_id: int, params_bytes: bytes, peer: str, how: str = "announce"
) -> TaskParams:
    task = await ctx.call(ctx.chain.task_info, task_id)
    if task.status == TaskStatus.NONE:
        raise ProtocolViolation(peer, f"task {task_id} does not exist on-chain")
    try:
        params = TaskParams.from_bytes(params_bytes)
    except SchedulerError as e:
        raise ProtocolViolation(peer, str(e)) from None
    if params.digest != task.params_digest:
        raise ProtocolViolation(peer, f"params do not match task {task_id}'s on-chain digest")
    if params.capability != task.capability or (
        params.canonical() != params_bytes and params.digest != task.params_digest
    ):
        raise ProtocolViolation(peer, "params disagree with the on-chain task")
    rt = ctx.rt(task_id)
    if rt.params is not None and rt.params.digest != task.params_digest:
        rt.params = None  # stale: learnt for a task id that a reorg reassigned
    if rt.params is None:
        rt.params = params
        ctx.save(task_id, "params.json", params.to_dict())
        ctx.state.save_params(task_id, params.canonical())
        rt.notify()
        # scripts/bench_network.py reads this line's timestamp (gossip latency)
        log.info("task %d: params known (via %s from %s)", task_id, how, peer)
    return params


async def on_announce(ctx: NodeContext, peer: str, data: bytes) -> bytes:
    try:
        ann = Announcement.parse(peer, data)
        known = ctx.rt(ann.task_id).params
        fresh = known is None or known.canonical() != ann.params
        await accept_params(ctx, ann.task_id, ann.params, peer)
    except (ProtocolViolation, ContractsError) as e:
        log.warning("announce from %s dropped: %s", peer, e)
        return error(str(e))
    if fresh:  # relay to the rest of the network
        with trio.move_on_after(5):
            try:
                await ctx.host.publish(TOPIC_TASKS, data)
            except NodeError as e:
                log.warning("cannot gossip task %d: %s", ann.task_id, e)
    return ok()


async def on_params_request(ctx: NodeContext, peer: str, data: bytes) -> bytes:
    try:
        obj = loads(peer, data)
        task_id = obj.get("task_id")
        if not isinstance(task_id, int):
            raise ProtocolViolation(peer, "task_id missing")
    except ProtocolViolation as e:
        log.warning("%s", e)
        return error(str(e))
    rt = ctx.tasks.get(task_id)
    if rt is None or rt.params is None:
        return error(f"params of task {task_id} unknown here")
    return ok(params="0x" + rt.params.canonical().hex())


async def fetch_params(ctx: NodeContext, rt: TaskRuntime) -> None:
    """Ask connected peers for params we missed on gossip (e.g. after a restart)."""
    for peer in list(ctx.host.connected_peers()):
        if rt.params is not None:
            return
        try:
            reply = await ctx.host.request(
                peer, PROTO_PARAMS, dumps({"task_id": rt.task_id}), timeout=5
            )
            obj = loads(peer, reply)
            if obj.get("ok") and isinstance(obj.get("params"), str):
                params = bytes.fromhex(obj["params"][2:])
                await accept_params(ctx, rt.task_id, params, peer, "fetch")
        except (NodeError, ContractsError, ValueError) as e:
            log.debug("params of task %d from %s: %s", rt.task_id, peer, e)
