"""Step 2b, committee: signed join intents and the one form_committee transaction."""

from __future__ import annotations

import logging

import trio

from dnode.contracts.client import TaskStatus
from dnode.contracts.errors import ContractsError, TransactionReverted
from dnode.node.errors import NodeError, ProtocolNotServed, ProtocolViolation
from dnode.node.protocol import (
    PROTO_JOIN,
    TOPIC_TASKS,
    JoinIntent,
    error,
    ok,
)
from dnode.node.task.context import NodeContext
from dnode.node.task.policy import choose_committee, rerun_ineligible
from dnode.node.task.state import TaskRuntime
from dnode.oracle.attestation import sign_join
from dnode.scheduler.candidates import Candidates, candidates_for
from dnode.scheduler.sortition import Candidate, Ranking

log = logging.getLogger("dnode.node")
JOIN_SETTLE = 1.5  # seconds a node waits for more intents once m are known, backups among them
JOIN_STAGGER = 3.0  # seconds between the committee's submitter and its backups
JOIN_REPEAT = 2.0  # seconds between re-broadcasts of a node's own join intent
BACKUP_WAIT = 8.0  # seconds best-ranked candidates have to offer before backups are seated
RANK_REFRESH = 4.0  # seconds between re-reads of the sortition (the window grows with blocks)
SEED_POLL = 0.5  # seconds between reads while the seed block is not mined yet (one block away)
RANK_WANT = 3  # candidates ranked per seat: m seats plus 2 m backups


async def join(ctx: NodeContext, rt: TaskRuntime, m: int, seat_deadline: int) -> None:
    """Offer a seat if the sortition drew this node, and help bind the committee.

    Once the task's seed block is mined, every node ranks the candidates with the same code
    (scheduler.sortition over the registry's stake slots, skipping nodes that cannot take a
    seat). A candidate signs and shares a join intent. The committee is the m best-ranked
    candidates whose intents arrived; a best-ranked candidate that has not offered within
    BACKUP_WAIT seconds is passed over and the next-ranked one (a backup) takes its seat.
    The best-ranked chosen member submits form_committee after a short settle time, the
    others back it up in order; the first transaction wins.
    """
    sig = sign_join(ctx.cfg.account, ctx.chain_id, ctx.contract, rt.task_id, rt.round)
    me = ctx.address.lower()
    rt.intents[me] = sig
    msg = JoinIntent(rt.task_id, rt.round, ctx.address, sig).to_bytes()
    what = "re-execution committee" if rt.round else "committee"
    last_sent = -JOIN_REPEAT
    ranking: Ranking | None = None
    refreshed = -RANK_REFRESH
    seeded: float | None = None  # when this node first knew the ranking
    said_not_drawn = said_backup = False
    while not rt.is_formed():
        if await ctx.chain_now() > seat_deadline:
            log.info("task %d: %s did not form before its seat deadline", rt.task_id, what)
            return
        if trio.current_time() - refreshed >= (RANK_REFRESH if seeded else SEED_POLL):
            refreshed = trio.current_time()
            try:
                cands = await ctx.call(candidates, ctx, rt)
            except ContractsError as e:
                log.warning("task %d: cannot rank candidates: %s", rt.task_id, e)
                cands = None
            if cands is not None:
                ranking = await ctx.call(cands.ranking, RANK_WANT * m)
                if seeded is None:
                    seeded = trio.current_time()
                    log.info(
                        "task %d: sortition ranks %s",
                        rt.task_id,
                        ", ".join(f"{c.address}@{c.draw}" for c in ranking.candidates),
                    )
        if ranking is None or seeded is None:
            with trio.move_on_after(0.5):
                await rt.until(rt.is_formed)
            continue
        if ranking.index(me) is None:
            if not said_not_drawn:
                said_not_drawn = True
                log.info("task %d: not drawn for the %s (yet)", rt.task_id, what)
            with trio.move_on_after(0.5):
                await rt.until(rt.is_formed)
            continue
        if trio.current_time() - last_sent >= JOIN_REPEAT:
            if last_sent < 0:
                pos = ranking.index(me)
                log.info("task %d: drawn as candidate #%d; offering to join the %s",
                         rt.task_id, (pos or 0) + 1, what)  # fmt: skip
            last_sent = trio.current_time()
            ctx.spawn(broadcast_join, ctx, msg)
        choice = choose_committee(
            ranking.candidates, rt.intents, m, me, trio.current_time() - seeded, BACKUP_WAIT
        )
        chosen, missing = choice.chosen, choice.missing
        if choice.position is not None:
            if choice.wait:
                with trio.move_on_after(0.5):
                    await rt.until(rt.is_formed)
                continue
            if missing and not said_backup:
                said_backup = True
                log.info(
                    "task %d: candidate(s) %s did not offer within %.0f s; backups take "
                    "their seats: %s",
                    rt.task_id,
                    ", ".join(missing),
                    BACKUP_WAIT,
                    ", ".join(c.address for c in chosen),
                )
            # the m best-ranked all offered: nobody can outrank them, so no settling
            settle = JOIN_SETTLE if missing else 0.0
            with trio.move_on_after(settle + choice.position * JOIN_STAGGER):
                await rt.until(rt.is_formed)
            if rt.is_formed():
                return
            if await submit_committee(ctx, rt, chosen):
                return
            refreshed = -RANK_REFRESH  # re-read who is eligible now
            continue
        with trio.move_on_after(0.5):
            await rt.until(rt.is_formed)


def candidates(ctx: NodeContext, rt: TaskRuntime) -> Candidates | None:
    """The chain's sortition for this round (None until the seed block is mined)."""
    task = ctx.chain.task_info(rt.task_id)
    params = rt.params if rt.round == 0 else ctx.rt(rt.task_id).params
    owners = params.owners if params is not None else ()
    return candidates_for(ctx.chain, task, rt.round, owners)


async def submit_committee(ctx: NodeContext, rt: TaskRuntime, chosen: list[Candidate]) -> bool:
    forming = TaskStatus.DISPUTED if rt.round else TaskStatus.OPEN
    if await ctx.call(ctx.chain.task_status, rt.task_id) != forming:
        return True
    me = ctx.address.lower()
    members = [c.address for c in chosen]
    sigs = [None if a.lower() == me else rt.intents[a.lower()] for a in members]
    draws = [c.draw for c in chosen]
    form = ctx.chain.form_rerun_committee if rt.round else ctx.chain.form_committee
    try:
        await ctx.tx(form, rt.task_id, members, sigs, draws)
        log.info(
            "task %d: round %d committee bound on-chain (%d members)",
            rt.task_id,
            rt.round,
            len(members),
        )
        return True
    except TransactionReverted as e:
        log.info("task %d: committee not bound: %s", rt.task_id, e.reason)
        if "not active" in e.reason or "not registered" in e.reason:
            # drop members that are no longer eligible and try again later
            for a in members:
                if a.lower() != me and not await ctx.call(ctx.chain.is_active, a):
                    rt.intents.pop(a.lower(), None)
        return False
    except ContractsError as e:
        log.warning("task %d: form_committee failed: %s", rt.task_id, e)
        return False


async def broadcast_join(ctx: NodeContext, msg: bytes) -> None:
    with trio.move_on_after(10):
        try:
            await ctx.host.publish(TOPIC_TASKS, msg)
        except NodeError as e:
            log.debug("join intent not gossiped: %s", e)
        for peer in list(ctx.host.connected_peers()):
            if peer in ctx.not_joiners:
                continue
            try:
                await ctx.host.request(peer, PROTO_JOIN, msg, timeout=5)
            except ProtocolNotServed:
                ctx.not_joiners.add(peer)
            except NodeError as e:
                log.debug("join intent to %s not delivered: %s", peer, e)


async def accept_join(ctx: NodeContext, peer: str, data: bytes) -> None:
    intent = JoinIntent.parse(peer, data, ctx.chain_id, ctx.contract)
    rt = ctx.rt(intent.task_id, intent.round)
    key = intent.node.lower()
    if key in rt.intents or rt.is_formed():
        return
    params = ctx.rt(intent.task_id).params
    if params is not None and params.is_owner(intent.node):
        raise ProtocolViolation(peer, f"{intent.node} is a data owner of the task")
    if intent.round:
        task = await ctx.call(ctx.chain.task_info, intent.task_id)
        reason = rerun_ineligible(task, intent.node)
        if reason is not None:
            raise ProtocolViolation(peer, f"{intent.node} cannot re-execute: {reason}")
    if not await ctx.call(ctx.chain.is_active, intent.node):
        raise ProtocolViolation(peer, f"{intent.node} is not an active node")
    rt.intents[key] = intent.signature
    rt.notify()


async def on_join_request(ctx: NodeContext, peer: str, data: bytes) -> bytes:
    try:
        await accept_join(ctx, peer, data)
    except (ProtocolViolation, ContractsError) as e:
        log.info("join intent from %s dropped: %s", peer, e)
        return error(str(e))
    return ok()
