"""A seat claimed back (node.task.claim): the claimant makes sure it can run it (params
known, not a data owner, the engine accepts the task) before its worker starts, and gives the
seat up on-chain otherwise (a decline is never slashed)."""

from __future__ import annotations

import logging

import trio

from dnode.node.errors import NodeError
from dnode.node.task.announce import fetch_params
from dnode.node.task.compute import prepare
from dnode.node.task.context import NodeContext
from dnode.node.task.policy import round_view
from dnode.node.task.state import TaskRuntime
from dnode.node.task.worker import abandon, start_worker
from dnode.scheduler.dp import budget_refusal

log = logging.getLogger("dnode.node")
PARAMS_AFTER_CLAIM = 60.0  # seconds a claimant looks for params past the claim period


async def take_claimed_seat(ctx: NodeContext, rt: TaskRuntime) -> None:
    """A claim may go out before the params are known: find them (bounded), refuse the seat
    on-chain (never slashed) if they never come or rule this node out, else run the worker."""
    first = ctx.rt(rt.task_id)
    task = await ctx.call(ctx.chain.task_info, rt.task_id)
    view = round_view(task, rt.round)
    until = view.claims_until if view is not None else 0
    wait = max(0.0, until - await ctx.chain_now()) + PARAMS_AFTER_CLAIM
    with trio.move_on_after(wait):
        while first.params is None:
            await fetch_params(ctx, first)
            with trio.move_on_after(2):
                await first.until(first.knows_params)
    params = first.params
    reason = ""
    if params is None:
        reason = "params never announced"
    elif params.is_owner(ctx.address):
        reason = "a data owner of the task never sits on its committee"
    elif rt.round and not params.spec.reruns(params):
        reason = f"{params.program} is not re-executed by this node version"
    else:
        try:
            prepare(ctx, rt, params)
            refused: str | None = await ctx.call(budget_refusal, ctx.chain, task, params)
            reason = refused or ""
        except NodeError as e:
            reason = str(e)
    if rt.is_displaced_or_closed():
        return
    if reason:
        log.warning("task %d: giving the claimed seat up: %s", rt.task_id, reason)
        await abandon(ctx, rt, reason)
        return
    if rt.round and rt.params is None:
        rt.params = params
        rt.notify()
    start_worker(ctx, rt)
