"""The task worker: a held seat runs the steps in order (inputs, compute, attest, report,
settle), and gives the seat up on-chain when this node fails."""

from __future__ import annotations

import logging

import trio

from dnode.contracts.client import TaskStatus
from dnode.contracts.errors import ContractsError, TransactionReverted
from dnode.node.errors import MpcError, NodeError, ProtocolViolation, leaves
from dnode.node.mpc.commitments import transcript_tag
from dnode.node.protocol import (
    SignatureMessage,
)
from dnode.node.task.attest import accept_signature, send_signature, sign_once
from dnode.node.task.claim import wait_claims
from dnode.node.task.compute import compute
from dnode.node.task.context import NodeContext
from dnode.node.task.cosign import cosign_if_left_out
from dnode.node.task.report import report
from dnode.node.task.settle import finalize
from dnode.node.task.state import TaskRuntime, TaskState
from dnode.oracle.errors import OracleError
from dnode.oracle.reporter import SignatureSet

log = logging.getLogger("dnode.node")
#: seconds the worker waits for its signature to reach the other members before it goes on to
#: report; sends still under way (an unreachable member, retries) continue in the background
SIGNATURES_WAIT = 3.0


def start_worker(ctx: NodeContext, rt: TaskRuntime) -> None:
    if rt.worker_started:
        return
    rt.worker_started = True
    assert ctx.nursery is not None
    ctx.nursery.start_soon(task_worker, ctx, rt)


async def task_worker(ctx: NodeContext, rt: TaskRuntime) -> None:
    """Seat held: wait for the committee and inputs, compute, sign, report, finalize."""
    with trio.CancelScope() as scope:
        watch_close(ctx, rt, scope)
        try:
            await work(ctx, rt)
            ctx.state.set_seat_state(rt.task_id, rt.round, "closed")
        except Exception as e:  # one task failing must never take the node down
            errors = leaves(e)
            for err in errors:
                if isinstance(err, (MpcError, ContractsError, NodeError, OracleError)):
                    log.error("task %d failed on this node: %s", rt.task_id, err)
                else:
                    log.error("task %d failed on this node (bug)", rt.task_id, exc_info=err)
            rt.advance(TaskState.FAILED)
            ctx.metrics.inc("task_failures_total")
            failure = {"error": "; ".join(map(str, errors))}
            ctx.save(rt.task_id, "failure.json", failure, rt.round)
            await abandon(ctx, rt, f"failed on this node: {errors[0]}")
    if rt.displaced:  # a better-ranked candidate claimed the seat (node.task.claim)
        log.info("task %d: round %d worker stopped (seat displaced)", rt.task_id, rt.round)
        return
    if rt.is_closed():
        ctx.state.set_seat_state(rt.task_id, rt.round, "closed")
        log.info("task %d closed", rt.task_id)


def watch_close(ctx: NodeContext, rt: TaskRuntime, scope: trio.CancelScope) -> None:
    async def watch() -> None:
        await rt.until(rt.is_displaced_or_closed)
        scope.cancel()

    assert ctx.nursery is not None
    ctx.nursery.start_soon(watch)


async def work(ctx: NodeContext, rt: TaskRuntime) -> None:
    """One committee's flow; round 1 is the same for the re-execution committee of a
    disputed task (its own seats, quorum, deadline, tunnels and shares)."""
    task = await ctx.call(ctx.chain.task_info, rt.task_id)
    if rt.round and rt.params is None:  # e.g. a restart: the seat is replayed from the log
        first = ctx.rt(rt.task_id)
        await first.until(first.knows_params)
        rt.params = first.params
        rt.notify()
    await rt.until(rt.knows_params)
    assert rt.params is not None and rt.seat is not None
    params = rt.params
    await rt.until(rt.is_formed)
    # issue 12: skipped candidates may still displace the worst members; the party list,
    # tunnel bindings and expected shares are fixed only once no claim can land
    await wait_claims(ctx, rt)
    if rt.round:
        task = await ctx.call(ctx.chain.task_info, rt.task_id)
        assert task.dispute is not None
        deadline = task.dispute.report_deadline
        rt.committee = await ctx.call(ctx.chain.rerun_seats, rt.task_id)
    else:
        deadline = task.report_deadline
        rt.committee = await ctx.call(ctx.chain.seats, rt.task_id)
    m = len(rt.committee)
    quorum = m // 2 + 1  # the contract's rule for both rounds
    peers = []
    for addr in rt.committee:
        peers.append((await ctx.call(ctx.chain.node_info, addr)).peer_id)
    committee = {"seats": rt.committee, "peers": peers}
    ctx.save(rt.task_id, "committee.json", committee, rt.round)
    ctx.state.set_committee(rt.task_id, rt.round, rt.committee)
    rt.signatures = SignatureSet(ctx.chain_id, ctx.contract, rt.task_id, rt.committee, quorum)
    log.info(
        "task %d: round %d committee formed, seat %d of %d; waiting for inputs",
        rt.task_id,
        rt.round,
        rt.seat,
        m,
    )
    result_bytes, _ = await compute(ctx, rt, params, peers, deadline)
    sig = sign_once(ctx, rt, result_bytes)
    rt.signatures.add(result_bytes, sig)
    rt.advance(TaskState.SIGNED)
    ctx.save(
        rt.task_id,
        "signature.json",
        {"result": "0x" + result_bytes.hex(), "signature": "0x" + sig.hex()},
        rt.round,
    )
    tag = transcript_tag(rt.transcript, sig) if rt.transcript else b""
    msg = SignatureMessage(rt.task_id, result_bytes, sig, rt.round, tag).to_bytes()
    for peer, early in rt.pending_signatures:  # arrived before our own result
        try:
            accept_signature(rt, peer, early)
        except ProtocolViolation as e:
            log.warning("%s", e)
    rt.pending_signatures.clear()
    await share_signature(ctx, [p for i, p in enumerate(peers) if i != rt.seat], msg)
    if rt.signatures.quorum_result() is not None:
        rt.notify()
    await report(ctx, rt, m, deadline)
    if rt.round == 0:
        await cosign_if_left_out(ctx, rt)  # a report that left our signature out
        await finalize(ctx, rt)  # an upheld or overturned re-execution settles at report


async def share_signature(ctx: NodeContext, peers: list[str], msg: bytes) -> None:
    """Send our signature to every other member at once; wait at most SIGNATURES_WAIT for
    the deliveries (one unreachable member must not hold the report back: its sends go on
    retrying in the background)."""
    pending = len(peers)
    all_sent = trio.Event()

    async def send(peer: str) -> None:
        nonlocal pending
        try:
            await send_signature(ctx, peer, msg)
        finally:
            pending -= 1
            if pending == 0:
                all_sent.set()

    if not peers:
        return
    for peer in peers:
        ctx.spawn(send, peer)
    with trio.move_on_after(SIGNATURES_WAIT):
        await all_sent.wait()


async def abandon(ctx: NodeContext, rt: TaskRuntime, reason: str) -> None:
    """Give the seat up on-chain (never slashed for it) unless this node already signed a
    result: that signature may be in a report, and a declined signer voids the report."""
    if ctx.state.signature(rt.task_id) is not None:
        log.info("task %d: signed already; keeping the seat (deadlines decide)", rt.task_id)
        return
    working = TaskStatus.RECOMPUTING if rt.round else TaskStatus.COMPUTING
    with trio.move_on_after(120):
        for _ in range(3):  # another member's decline may change the record under us
            try:
                if await ctx.call(ctx.chain.task_status, rt.task_id) == working:
                    await ctx.tx(ctx.chain.decline, rt.task_id, reason[:120])
                    log.info("task %d: declined round %d seat: %s", rt.task_id, rt.round, reason)
                break
            except TransactionReverted as e:
                if "bad task record" not in e.reason and "bad dispute" not in e.reason:
                    log.warning("task %d: could not decline the seat: %s", rt.task_id, e)
                    break
            except ContractsError as e:
                log.warning("task %d: could not decline the seat: %s", rt.task_id, e)
                break
    ctx.state.set_seat_state(rt.task_id, rt.round, "abandoned", reason)
