"""After a restart (or kill -9): settle the outbox, then resume or abandon each held seat."""

from __future__ import annotations

import logging

from dnode.contracts.client import TERMINAL_STATUSES, TaskStatus
from dnode.contracts.errors import ContractsError
from dnode.node.errors import NodeError
from dnode.node.protocol import (
    Contribution,
)
from dnode.node.state import HeldSeat
from dnode.node.task.claim import claimed_seat
from dnode.node.task.context import NodeContext
from dnode.node.task.policy import Resume, resume_action
from dnode.node.task.settle import resume_settle
from dnode.node.task.state import TaskState
from dnode.node.task.worker import abandon, task_worker
from dnode.scheduler.errors import SchedulerError
from dnode.scheduler.programs import TaskParams

log = logging.getLogger("dnode.node")
TERMINAL = TERMINAL_STATUSES


async def recover(ctx: NodeContext) -> None:
    """After a restart (or kill -9): settle the outbox, then resume or abandon each seat
    the state db says this node held (see docs/protocol.md, "Restarts")."""
    outbox = ctx.outbox
    if outbox is not None and outbox.pending(ctx.address):
        try:
            rows = await ctx.call(outbox.recover, ctx.chain.w3, ctx.cfg.account, 60.0)
            for r in rows:
                log.info("outbox: %s nonce %d after restart: %s", r.action, r.nonce, r.state)
        except ContractsError as e:
            log.warning("outbox not settled yet: %s", e)
    for held in ctx.state.open_seats():
        try:
            await resume_seat(ctx, held)
        except (ContractsError, NodeError, SchedulerError) as e:
            log.warning("task %d: seat not resumed: %s", held.task_id, e)


async def resume_seat(ctx: NodeContext, held: HeldSeat) -> None:
    task_id, rnd = held.task_id, held.round
    rt = ctx.rt(task_id, rnd)
    rt.seat, rt.restored, rt.worker_started = held.seat, True, True
    canonical = ctx.state.params(task_id)
    if canonical is not None:
        params = TaskParams.from_bytes(canonical)
        for r in (ctx.rt(task_id), rt):
            if r.params is None:
                r.params = params
                r.notify()
    for owner, data in ctx.state.shares(task_id, rnd).items():
        rt.contributions[owner] = Contribution.parse("state-db", data)
    if rt.params is not None and len(rt.contributions) == len(rt.params.owners):
        rt.notify()
    task = await ctx.call(ctx.chain.task_info, task_id)
    held = claimed_seat(ctx, held, task)  # a claim may have landed on another seat
    rt.seat = held.seat
    signed = ctx.state.signature(task_id) is not None
    computed = ctx.state.result(task_id, rnd) is not None
    # e.g. MPC: with every share stored the party reruns in the next retry slot; with some
    # missing it waits (bounded by input_timeout) for owners that have not sent yet
    rerun = rt.params is not None and rt.params.spec.supports_rerun
    action = resume_action(
        task, rnd, held.seat, ctx.address, signed=signed, computed=computed, can_rerun=rerun
    )
    if action == Resume.CLOSE:
        ctx.state.set_seat_state(task_id, rnd, "closed", f"{task.status.name.lower()}")
        return
    rt.advance(TaskState.FORMED)
    if action == Resume.WORK:
        how = "signed" if signed else "computed" if computed else "rerunning the MPC"
        if not (signed or computed or rt.inputs_complete()):
            how = "waiting for inputs"
        log.info("task %d: resuming round %d seat %d (%s)", task_id, rnd, held.seat, how)
        ctx.spawn(task_worker, ctx, rt)
    elif action == Resume.ABANDON:
        log.info("task %d: cannot resume round %d seat (inputs lost)", task_id, rnd)
        await abandon(ctx, rt, "restarted without the task's inputs")
    elif action == Resume.SETTLE:
        if task.status == TaskStatus.REPORTED:
            log.info("task %d: resuming (reported; finalizing when the window closes)", task_id)
        ctx.spawn(resume_settle, ctx, rt)
