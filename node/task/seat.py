"""Step 2, seat: whether this node offers a seat (original or re-execution committee).

The decisions are plain functions (``policy``, ``scheduler.eligibility``); this module reads
the chain and hands over to the committee step."""

from __future__ import annotations

import logging
from typing import Any

import trio

from dnode.contracts.errors import ContractsError
from dnode.node.errors import NodeError
from dnode.node.task.announce import fetch_params
from dnode.node.task.committee import join
from dnode.node.task.compute import prepare
from dnode.node.task.context import NodeContext
from dnode.node.task.policy import OpenView, rerun_ineligible
from dnode.node.task.state import TaskRuntime
from dnode.scheduler.dp import budget_refusal
from dnode.scheduler.eligibility import NodeView, should_claim
from dnode.scheduler.seat_terms import params_wait

log = logging.getLogger("dnode.node")


async def consider_task(ctx: NodeContext, rt: TaskRuntime, posted: dict[str, Any]) -> None:
    """Decide whether to take a seat in a newly posted task, and take it."""
    try:
        await (consider_rerun(ctx, rt) if rt.round else consider(ctx, rt))
    except Exception as e:  # never take the node down over one task
        log.error("task %d: seat decision failed", rt.task_id, exc_info=e)


async def consider(ctx: NodeContext, rt: TaskRuntime) -> None:
    posted = await ctx.call(ctx.chain.task_info, rt.task_id)
    # issue 12: a requester who withholds params cannot mute honest candidates: look for them
    # for the whole seat window, not 30 s
    with trio.move_on_after(params_wait(posted.seat_deadline, await ctx.chain_now())):
        # gossip may have passed us by; ask peers again until someone knows (bounded)
        while rt.params is None:
            await fetch_params(ctx, rt)
            with trio.move_on_after(2):
                await rt.until(rt.knows_params)
    if rt.params is None:
        log.info("task %d: no valid params announced; not taking a seat", rt.task_id)
        return
    try:
        prepare(ctx, rt, rt.params)  # the engine checks the task's arguments (e.g. HE params)
    except NodeError as e:
        log.warning("task %d: not taking a seat: %s", rt.task_id, e)
        return
    try:
        info = await ctx.call(ctx.chain.node_info, ctx.address)
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
    except ContractsError as e:
        log.warning("task %d: cannot read chain state: %s", rt.task_id, e)
        return
    why = await ctx.call(budget_refusal, ctx.chain, task, rt.params)
    if why:
        log.warning("task %d: not taking a seat: %s", rt.task_id, why)
        return
    view = await node_view(ctx, info)
    decision = should_claim(view, task, rt.params)
    if not decision.ok:
        log.info("task %d: not claiming a seat: %s", rt.task_id, decision.reason)
        return
    await join(ctx, rt, task.committee_size, task.seat_deadline)


async def node_view(ctx: NodeContext, info: Any) -> NodeView:
    runtimes = [*ctx.tasks.values(), *ctx.reruns.values()]
    busy = sum(1 for t in runtimes if t.seat is not None and not t.is_closed())
    return NodeView(
        address=ctx.address,
        peer_id=ctx.host.peer_id,
        registered_peer_id=info.peer_id,
        capabilities=info.capabilities,
        free_stake=info.stake - info.locked,
        seat_collateral=int(ctx.chain.deployment.params["seat_collateral"]),
        running=busy,
        max_tasks=ctx.cfg.max_tasks,
    )


async def consider_rerun(ctx: NodeContext, rt: TaskRuntime) -> None:
    """A task was disputed: offer a re-execution seat if this node may hold one (not in
    the original committee, not the requester, disputer or a data owner)."""
    first = ctx.rt(rt.task_id)
    with trio.move_on_after(30):
        if first.params is None:
            await fetch_params(ctx, first)
        await first.until(first.knows_params)
    if first.params is None:
        log.info("task %d: params unknown; not joining the re-execution", rt.task_id)
        return
    if not first.params.spec.reruns(first.params):
        log.info(
            "task %d: %s is not re-executed by this node version (a DP task never is: a second "
            "noisy release would spend budget nobody charged)", rt.task_id, first.params.program
        )  # fmt: skip
        return
    rt.params = first.params
    rt.notify()
    try:
        info = await ctx.call(ctx.chain.node_info, ctx.address)
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
    except ContractsError as e:
        log.warning("task %d: cannot read chain state: %s", rt.task_id, e)
        return
    reason = rerun_ineligible(task, ctx.address) or await ctx.call(
        budget_refusal, ctx.chain, task, rt.params
    )
    if reason is None:
        # should_claim's node-side checks, with the task viewed as open for the rerun
        view = await node_view(ctx, info)
        open_view = OpenView(task.capability, task.committee_size + 2)
        decision = should_claim(view, open_view, rt.params)
        reason = None if decision.ok else decision.reason
    if reason is not None or task.dispute is None:
        log.info("task %d: not joining the re-execution: %s", rt.task_id, reason)
        return
    await join(ctx, rt, task.committee_size + 2, task.dispute.seat_deadline)
