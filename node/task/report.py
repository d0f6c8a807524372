"""Step 6, report: the ranked reporter submits the quorum's signatures (backups stagger)."""

from __future__ import annotations

import logging

import trio

from dnode.contracts.client import TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.node.errors import MpcError
from dnode.node.task.context import NodeContext
from dnode.node.task.state import TaskRuntime, TaskState
from dnode.oracle.reporter import reporter_rank
from dnode.scheduler.seat_terms import claims_wait

log = logging.getLogger("dnode.node")
REPORT_STAGGER = 4.0  # seconds between a reporter and its backup


async def report(ctx: NodeContext, rt: TaskRuntime, m: int, deadline: int) -> None:
    assert rt.seat is not None and rt.signatures is not None
    rank = reporter_rank(rt.task_id, rt.seat, m)
    with trio.move_on_after(max(5.0, deadline - await ctx.chain_now())):
        # a member whose peers' signatures never arrived stops waiting once another member
        # reported (it may then co-sign: node.task.cosign)
        await rt.until(lambda: rt.has_quorum() or rt.is_reported())
        with trio.move_on_after(rank * REPORT_STAGGER):
            await rt.until(rt.is_reported)
    if rt.is_reported():
        return
    status = await ctx.call(ctx.chain.task_status, rt.task_id)
    if status != (TaskStatus.RECOMPUTING if rt.round else TaskStatus.COMPUTING):
        rt.advance(TaskState.REPORTED)
        return
    q = rt.signatures.quorum_result()
    if q is None:
        raise MpcError(rt.task_id, "no quorum of matching signatures before the deadline")
    result, sigs = q
    task = await ctx.call(ctx.chain.task_info, rt.task_id)  # issue 12: claim period
    await trio.sleep(claims_wait(task.dispute if rt.round else task, await ctx.chain_now()))
    submit = ctx.chain.report_rerun if rt.round else ctx.chain.report
    try:
        await ctx.tx(submit, rt.task_id, result, sigs)
        log.info(
            "task %d: round %d result reported with %d signatures",
            rt.task_id,
            rt.round,
            len(sigs),
        )
    except TransactionReverted as e:
        log.info("task %d: report not needed: %s", rt.task_id, e.reason)
    rt.advance(TaskState.REPORTED)
