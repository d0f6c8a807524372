"""Chain events, mapped onto the task steps (acted on once confirmed; see chainwatch)."""

from __future__ import annotations

import logging
from typing import Any

from dnode.contracts.client import ChainEvent
from dnode.node.state import OPEN_SEAT_STATES
from dnode.node.task.claim import claim_loop, on_seat_claimed
from dnode.node.task.claimed import take_claimed_seat
from dnode.node.task.context import NodeContext
from dnode.node.task.seat import consider_task
from dnode.node.task.state import TaskState
from dnode.node.task.worker import start_worker

log = logging.getLogger("dnode.node")


def on_orphaned(ctx: NodeContext, ev: ChainEvent) -> None:
    """An event this node acted on was reorged out (a reorg deeper than the confirmation
    depth). Forget what it started; if the chain replays the task, it starts afresh."""
    task_id = int(ev.args.get("task_id", 0))
    log.warning(
        "orphaned event %s of task %d (block %d, tx %s) was reorged out",
        ev.name,
        task_id,
        ev.block_number,
        ev.tx_hash,
    )
    if ev.name in ("TaskPosted", "TaskDisputed"):
        rnd = 1 if ev.name == "TaskDisputed" else 0
        rt = (ctx.reruns if rnd else ctx.tasks).pop(task_id, None)
        if rt is not None:
            rt.advance(TaskState.CLOSED)  # stops its worker; tunnels and parties go with it


async def on_chain_event(ctx: NodeContext, ev: Any) -> None:
    name, args = ev.name, ev.args
    task_id = int(args.get("task_id", 0))
    if name == "TaskPosted":
        rt = ctx.rt(task_id)
        if rt.params is not None and rt.params.digest != bytes(args["params_digest"]):
            # params learnt for a task that was reorged out before it was confirmed
            rt.params = None
        # scripts and tests read this line: the block and tx the node acts on
        log.info(
            "task %d posted in block %d (tx %s); considering a seat",
            task_id,
            ev.block_number,
            ev.tx_hash,
        )
        assert ctx.nursery is not None
        ctx.nursery.start_soon(consider_task, ctx, rt, args)
    elif name == "CommitteeFormed":
        rnd = int(args["round"])
        rt = ctx.rt(task_id, rnd)
        members = [a.lower() for a in args["members"]]
        if ctx.address.lower() in members:
            rt.seat = members.index(ctx.address.lower())
            if rnd:
                log.info("task %d: re-execution seat %d", task_id, rt.seat)
            held = ctx.state.seat(task_id, rnd)
            if held is None:  # committed before any work on the seat
                ctx.state.hold_seat(task_id, rnd, rt.seat)
            if held is None or held.state in OPEN_SEAT_STATES:
                start_worker(ctx, rt)
        elif int(args.get("skips", 0)) and not rt.displaced:
            # the formation skipped candidates: if this node is one ranked above the worst
            # member, it claims that seat during the claim period (issue 12)
            ctx.spawn(claim_loop, ctx, rt)
        rt.advance(TaskState.FORMED)
    elif name == "SeatClaimed":
        rt = ctx.rt(task_id, int(args["round"]))
        if on_seat_claimed(ctx, rt, str(args["node"]), int(args["seat"]), str(args["displaced"])):
            ctx.spawn(take_claimed_seat, ctx, rt)
    elif name == "TaskDisputed":
        log.info("task %d disputed by %s", task_id, args["disputer"])
        rt = ctx.rt(task_id, 1)
        assert ctx.nursery is not None
        ctx.nursery.start_soon(consider_task, ctx, rt, args)
    elif name == "SeatDeclined":
        known = ctx.known(task_id, int(args.get("round", 0)))
        if known is not None and str(args["node"]).lower() != ctx.address.lower():
            known.peer_declined = True
            known.notify()  # every party is needed: stop retrying the MPC
    elif name == "ResultReported":
        known = ctx.known(task_id, int(args.get("round", 0)))
        if known is not None:
            known.advance(TaskState.REPORTED)
    elif name in ("TaskFinalized", "TaskRefunded", "DisputeResolved"):
        for known in (ctx.tasks.get(task_id), ctx.reruns.get(task_id)):
            if known is not None:
                known.advance(TaskState.REPORTED)
                known.advance(TaskState.CLOSED)
