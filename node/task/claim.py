"""Issue 12's claim period, node side: a candidate the formation skipped takes its seat back
with ``claim_seat``; a member displaced by such a claim stops its worker and forgets the seat;
every member waits for the claim period to end before it fixes the committee it computes
with (MPC party list, tunnel bindings, whose shares it expects).

The decisions are plain functions in ``node.task.policy`` (``claim_plan``, ``claim_position``)
and ``scheduler.eligibility.should_claim``; this module reads the chain and sends the claim.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from dnode.contracts.client import TaskStatus
from dnode.contracts.errors import ContractsError, TransactionReverted
from dnode.node.errors import NodeError
from dnode.node.state import HeldSeat
from dnode.node.task.context import NodeContext
from dnode.node.task.policy import OpenView, claim_plan, claim_position, round_view
from dnode.node.task.seat import node_view
from dnode.node.task.state import TaskRuntime
from dnode.scheduler.candidates import candidates_for
from dnode.scheduler.eligibility import should_claim

log = logging.getLogger("dnode.node")
CLAIM_STAGGER = 2.0  # seconds between skipped candidates' claims, best-ranked first
CLAIM_POLL = 1.0  # seconds between re-reads of the claim period while it is open
CLAIM_ATTEMPTS = 3  # claim transactions per claim period at most (each re-checked first)


async def wait_claims(ctx: NodeContext, rt: TaskRuntime) -> None:
    """Until no seat of this round can be claimed any more: the latest block is stamped at
    or after ``claims_until`` (the contract's bound), or every skip was used up."""
    said = False
    while True:
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
        view = round_view(task, rt.round)
        until = view.claims_until if view is not None else 0
        if not until:
            return
        latest = await ctx.call(ctx.chain.block_timestamp)
        if latest >= until:
            return
        if not said:
            said = True
            log.info(
                "task %d: round %d claim period open for %d s; the committee may still change",
                rt.task_id,
                rt.round,
                until - latest,
            )
        with trio.move_on_after(min(CLAIM_POLL, until - latest)):
            await rt.until(rt.is_displaced_or_closed)
        if rt.is_displaced_or_closed():
            return


async def claim_loop(ctx: NodeContext, rt: TaskRuntime) -> None:
    """A committee formed without this node: claim a seat if the formation skipped it and it
    ranks above the worst member, for as long as the claim period is open."""
    if rt.claiming:
        return
    rt.claiming = True
    try:
        await _claim(ctx, rt)
    except (ContractsError, NodeError) as e:
        log.warning("task %d: seat claim check failed: %s", rt.task_id, e)
    except Exception as e:  # never take the node down over one task
        log.error("task %d: seat claim failed (bug)", rt.task_id, exc_info=e)
    finally:
        rt.claiming = False


async def _claim(ctx: NodeContext, rt: TaskRuntime) -> None:
    me = ctx.address.lower()
    last_reason = ""
    waited_for = -1
    attempts = 0
    while attempts < CLAIM_ATTEMPTS and rt.seat is None and not rt.is_displaced_or_closed():
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
        working = TaskStatus.RECOMPUTING if rt.round else TaskStatus.COMPUTING
        view = round_view(task, rt.round)
        if task.status != working or view is None:
            return
        reason = await _ineligible(ctx, rt, task)
        if reason:
            log.info("task %d: not claiming a round %d seat: %s", rt.task_id, rt.round, reason)
            return
        cands = await ctx.call(candidates_for, ctx.chain, task, rt.round, _owners(ctx, rt))
        if cands is None:
            return  # the seed is out of blockhash reach: the claim period is long over
        worst = max(view.draws)
        ranking = await ctx.call(cands.ranking, None, worst + 1)
        pos = ranking.index(me)
        my_draw = ranking.candidates[pos].draw if pos is not None else None
        latest = await ctx.call(ctx.chain.block_timestamp)
        plan = claim_plan(view, me, my_draw, latest)
        if not plan.ok:
            if plan.reason != last_reason:
                why = ranking.rejected.get(me) if my_draw is None else None
                log.info(
                    "task %d: no round %d seat to claim: %s%s",
                    rt.task_id,
                    rt.round,
                    plan.reason,
                    f" ({why})" if why else "",
                )
            if plan.final:
                return
            last_reason = plan.reason
            with trio.move_on_after(CLAIM_POLL):
                await rt.until(rt.is_displaced_or_closed)
            continue
        assert my_draw is not None and plan.seat is not None
        ahead = claim_position(my_draw, view, [c.draw for c in ranking.candidates])
        if ahead and waited_for != rt.claims_seen:
            # better-ranked skipped candidates claim first; re-check once one did (or after
            # their turn passed)
            waited_for = rt.claims_seen

            def moved(seen: int = waited_for) -> bool:
                return rt.claims_seen != seen

            with trio.move_on_after(ahead * CLAIM_STAGGER):
                await rt.until(moved)
            continue
        attempts += 1
        if await _send_claim(ctx, rt, my_draw, plan.seat, plan.displaced):
            return


async def _send_claim(
    ctx: NodeContext, rt: TaskRuntime, draw: int, seat: int | None, displaced: str
) -> bool:
    """One claim_seat transaction; the seat is recorded first (crash safety: a restart
    finds it, and recover looks up where the claim actually landed)."""
    assert seat is not None
    ctx.state.hold_seat(rt.task_id, rt.round, seat)
    ctx.state.set_seat_state(rt.task_id, rt.round, "seated", "claiming")
    log.info(
        "task %d: skipped by the round %d formation though ranked above its worst member; "
        "claiming seat %d (draw %d, displacing %s)",
        rt.task_id,
        rt.round,
        seat,
        draw,
        displaced,
    )
    try:
        await ctx.tx(ctx.chain.claim_seat, rt.task_id, draw)
        return True
    except TransactionReverted as e:
        log.info("task %d: seat claim refused: %s", rt.task_id, e.reason)
    except ContractsError as e:
        log.warning("task %d: seat claim failed: %s", rt.task_id, e)
    if rt.seat is None:  # SeatClaimed has not (and will not) come for this attempt
        ctx.state.set_seat_state(rt.task_id, rt.round, "closed", "claim not taken")
    return False


def _owners(ctx: NodeContext, rt: TaskRuntime) -> tuple[str, ...]:
    params = ctx.rt(rt.task_id).params
    return tuple(params.owners) if params is not None else ()


async def _ineligible(ctx: NodeContext, rt: TaskRuntime, task: Any) -> str:
    """Why this node would not take the seat (its own terms, capacity, HE reruns), or ''."""
    params = ctx.rt(rt.task_id).params
    if rt.round and params is not None and not params.spec.reruns(params):
        return f"{params.program} is not re-executed by this node version"
    info = await ctx.call(ctx.chain.node_info, ctx.address)
    view = await node_view(ctx, info)
    if rt.round:
        open_view: Any = OpenView(task.capability, task.committee_size + 2)
    else:
        open_view = _Open(task)
    # params may be unknown yet (a requester can withhold them past the claim period): the
    # claim goes out anyway and the data-owner rule is checked once they arrive
    decision = should_claim(view, open_view, params)
    return "" if decision.ok else decision.reason


class _Open:
    """A formed task as ``should_claim`` sees one seat of it (the seat terms still apply)."""

    def __init__(self, task: Any) -> None:
        self.status = TaskStatus.OPEN
        self.seats_taken = 0
        self.capability = task.capability
        self.committee_size = task.committee_size
        self.reward = task.reward
        self.compute_window = task.compute_window


def on_seat_claimed(
    ctx: NodeContext, rt: TaskRuntime, node: str, seat: int, displaced: str
) -> bool:
    """SeatClaimed: the displaced member stops and forgets its seat (it signs nothing),
    everyone updates its view of the committee; True if this node is the claimant (the
    caller then runs ``node.task.claimed.take_claimed_seat``)."""
    mine = False
    me = ctx.address.lower()
    if seat < len(rt.committee):
        rt.committee[seat] = node
    rt.claims_seen += 1
    if displaced.lower() == me and rt.seat == seat:
        rt.seat = None
        rt.displaced = True
        ctx.state.set_seat_state(rt.task_id, rt.round, "displaced", f"seat claimed by {node}")
        log.info(
            "task %d: round %d seat %d claimed by better-ranked %s; this node is displaced "
            "(collateral unlocked, nothing signed) and stops its worker",
            rt.task_id,
            rt.round,
            seat,
            node,
        )
    elif node.lower() == me:
        rt.seat = seat
        held = ctx.state.seat(rt.task_id, rt.round)
        if held is None or held.seat != seat or held.state != "seated":
            ctx.state.hold_seat(rt.task_id, rt.round, seat)
            ctx.state.set_seat_state(rt.task_id, rt.round, "seated", "claimed")
        log.info(
            "task %d: round %d seat %d claimed back (displacing %s); starting its worker",
            rt.task_id,
            rt.round,
            seat,
            displaced,
        )
        mine = True
    else:
        log.info(
            "task %d: round %d seat %d now held by %s (claimed from %s)",
            rt.task_id,
            rt.round,
            seat,
            node,
            displaced,
        )
    rt.notify()
    return mine


def claimed_seat(ctx: NodeContext, held: HeldSeat, task: Any) -> HeldSeat:
    """After a restart: a claim recorded before it was sent may have landed on another seat
    (an earlier claim moved the worst member): follow the chain's record."""
    view = round_view(task, held.round)
    if view is None:
        return held
    members = [a.lower() for a in view.members]
    me = ctx.address.lower()
    if me in members and members.index(me) != held.seat:
        seat = members.index(me)
        ctx.state.hold_seat(held.task_id, held.round, seat)
        return HeldSeat(held.task_id, held.round, seat, held.committee, held.state, held.note)
    return held
