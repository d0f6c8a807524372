"""Step 7, settle: finalize after the challenge window, or see a dispute through."""

from __future__ import annotations

import logging

import trio

from dnode.contracts.client import TERMINAL_STATUSES, TaskStatus
from dnode.contracts.errors import ContractsError, TransactionReverted
from dnode.node.task.context import NodeContext
from dnode.node.task.cosign import cosign_if_left_out
from dnode.node.task.report import REPORT_STAGGER
from dnode.node.task.state import TaskRuntime
from dnode.oracle.reporter import reporter_rank

log = logging.getLogger("dnode.node")
TERMINAL = TERMINAL_STATUSES
FINALIZE_GRACE = 600.0  # seconds past the window a member keeps trying to finalize


async def finalize(ctx: NodeContext, rt: TaskRuntime) -> None:
    """Finalize once the challenge window has passed in chain time (backups stagger)."""
    if not ctx.cfg.auto_finalize:
        return
    period = int(ctx.chain.deployment.params["challenge_period"])
    task = await ctx.call(ctx.chain.task_info, rt.task_id)
    if task.status != TaskStatus.REPORTED:
        return
    assert rt.seat is not None
    rank = reporter_rank(rt.task_id, rt.seat, task.committee_size)
    opens_at = task.reported_at + period
    give_up = trio.current_time() + period + FINALIZE_GRACE
    with trio.move_on_after(rank * REPORT_STAGGER):
        await rt.until(rt.is_closed)
    while not rt.is_closed() and trio.current_time() < give_up:
        now = await ctx.chain_now()
        if now < opens_at:
            with trio.move_on_after(min(opens_at - now, 5)):
                await rt.until(rt.is_closed)
            continue
        try:
            await ctx.tx(ctx.chain.finalize, rt.task_id)
            log.info("task %d: finalized", rt.task_id)
            return
        except TransactionReverted as e:
            st = await ctx.call(ctx.chain.task_status, rt.task_id)
            if st in TERMINAL:
                return
            if st in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING):
                await settle_dispute(ctx, rt, rank)
                return
            log.info("task %d: finalize not yet possible: %s", rt.task_id, e.reason)
            with trio.move_on_after(2):
                await rt.until(rt.is_closed)


async def settle_dispute(ctx: NodeContext, rt: TaskRuntime, rank: int) -> None:
    """The result was disputed. A re-execution report settles it at once; if the
    re-execution committee never forms or never reports, an original member calls
    resolve_dispute once its deadline has passed (backups stagger)."""
    log.info("task %d: result disputed; waiting for the re-execution", rt.task_id)
    while not rt.is_closed():
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
        if task.status in TERMINAL or task.dispute is None:
            return
        d = task.dispute
        due = d.seat_deadline if task.status == TaskStatus.DISPUTED else d.report_deadline
        wait = due + 1 + rank * REPORT_STAGGER - await ctx.chain_now()
        if wait > 0:
            with trio.move_on_after(min(wait, 5)):
                await rt.until(rt.is_closed)
            continue
        try:
            await ctx.tx(ctx.chain.resolve_dispute, rt.task_id)
            log.info("task %d: dispute resolved (re-execution missed its deadline)", rt.task_id)
            return
        except TransactionReverted as e:
            log.info("task %d: resolve_dispute not possible: %s", rt.task_id, e.reason)
            with trio.move_on_after(2):
                await rt.until(rt.is_closed)


async def resume_settle(ctx: NodeContext, rt: TaskRuntime) -> None:
    """A reported (or disputed) task this node sat on: finalize or settle, as before."""
    try:
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
        assert rt.seat is not None
        if task.status == TaskStatus.REPORTED:
            await cosign_if_left_out(ctx, rt)  # left out of the report while we were down
            await finalize(ctx, rt)
        else:
            await settle_dispute(ctx, rt, reporter_rank(rt.task_id, rt.seat, len(task.committee)))
        ctx.state.set_seat_state(rt.task_id, rt.round, "closed")
    except ContractsError as e:
        log.warning("task %d: settling after restart failed: %s", rt.task_id, e)
