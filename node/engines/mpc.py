"""The MPC engine: MPyC parties over authenticated tunnels, retried in slots shared by the
committee."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import trio

from dnode.node.aggregation import enforce as enforce_min_aggregation
from dnode.node.aggregation import values_per_owner
from dnode.node.errors import CheatingDetectedError, MpcError, leaves
from dnode.node.mpc.commitments import sharing_commitment
from dnode.node.mpc.executor import MpcJob, free_port
from dnode.node.mpc.influence import task_bound
from dnode.node.task.context import NodeContext, Session
from dnode.node.task.state import TaskRuntime, TaskState
from dnode.node.tunnel import SeatBinding, tunnel_forwarders
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.programs import Program, TaskParams, threshold_for

log = logging.getLogger("dnode.node")
MPC_SLOT_GAP = 5.0  # seconds between the end of one MPC attempt slot and the next
MPC_REPORT_MARGIN = 30.0  # seconds kept before the report deadline to sign and report
MPC_MIN_ATTEMPT = 15.0  # shortest MPC attempt worth starting


@dataclass
class Party:
    """This node's MPyC party of the current attempt: tunnels into it resolve to ``port`` once
    ``started`` is set (the executor sets it when the party listens)."""

    port: int = field(default_factory=free_port)
    started: trio.Event = field(default_factory=trio.Event)

    def fresh(self) -> None:
        self.port = free_port()
        self.started = trio.Event()


@dataclass(frozen=True)
class MpcPrepared:
    params: TaskParams


class MpcEngine:
    """Shamir shares in, ``AggregateResult`` out (abi-encoded int256[] on-chain)."""

    def prepare(self, spec: Program, params: TaskParams, task_dir: Path) -> MpcPrepared:
        return MpcPrepared(params)  # TaskParams checked kind, bits and owners when parsed

    async def compute(self, prepared: MpcPrepared, session: Session) -> AggregateResult:
        ctx, rt = session.ctx, session.rt
        party = Party()
        accept_tunnels(ctx, rt, session.peers, party)
        try:
            return await mpc_compute(
                ctx, rt, prepared.params, session.peers, len(session.peers), session.deadline, party
            )
        finally:
            ctx.host.remove_tunnel_target(tunnel_key(ctx, rt.task_id, rt.round))

    def encode_result(self, spec: Program, raw: AggregateResult) -> bytes:
        return raw.encode()


async def mpc_compute(
    ctx: NodeContext,
    rt: TaskRuntime,
    params: TaskParams,
    peers: list[str],
    m: int,
    deadline: int,
    party: Party,
) -> AggregateResult:
    # restarted with every share: the others' session broke, they retry in the slots
    aligned = rt.restored and rt.inputs_complete()
    with trio.move_on_after(params.input_timeout):
        await rt.until(rt.inputs_complete)
    if not rt.inputs_complete():
        raise MpcError(
            rt.task_id,
            f"only {len(rt.contributions)} of {len(params.owners)} data owners delivered shares",
        )
    # a published aggregate of too few owners/values reveals them: decline, never compute
    enforce_min_aggregation(rt.task_id, params.extra, values_per_owner(params, rt.contributions))
    if aligned:
        await await_mpc_slot(ctx, rt, deadline, party)
    while True:
        failed: MpcError | None = None
        try:
            timeout = await attempt_timeout(ctx, deadline)
            result = await run_party(ctx, rt, params, peers, m, timeout, party)
        except CheatingDetectedError:  # a check failed: no retry, refuse to sign
            raise
        except MpcError as e:  # e.g. a party was killed: every party retries in step
            failed = e
        except BaseExceptionGroup as eg:  # raised through the tunnels' nursery
            errs = leaves(eg)
            if not all(isinstance(x, MpcError) for x in errs):
                raise
            for x in errs:
                if isinstance(x, CheatingDetectedError):
                    raise x from None
            failed = cast(MpcError, errs[0])
        if failed is None:
            break
        log.info("task %d: MPC attempt failed (%s)", rt.task_id, failed.detail)
        await await_mpc_slot(ctx, rt, deadline, party, failed)
    return result


async def await_mpc_slot(
    ctx: NodeContext, rt: TaskRuntime, deadline: int, party: Party, failed: MpcError | None = None
) -> None:
    """Sleep until the next MPC retry slot, or raise ``failed`` if none is left.

    Slots are a grid every ``mpc_timeout + MPC_SLOT_GAP`` seconds counted back from the
    report deadline (minus a margin to sign and report), identical on every member, so a
    restarted member and the ones whose session broke start fresh parties together and no
    stale party is left listening (each attempt ends before the next slot)."""
    slot = ctx.cfg.mpc_timeout + MPC_SLOT_GAP
    last = deadline - MPC_REPORT_MARGIN  # no attempt may run past this chain time
    now = await ctx.chain_now()
    k = int((last - now) // slot)
    if k >= 1 and not rt.peer_declined:
        start = last - k * slot
        log.info("task %d: next MPC attempt in %.0f s (slot %d)", rt.task_id, start - now, k)
        with trio.move_on_after(max(0.0, start - now)):
            await rt.until(rt.declined)
    if k < 1 or rt.peer_declined:
        why = "a member declined its seat" if k >= 1 else "no time left before the deadline"
        raise MpcError(rt.task_id, f"{failed.detail + '; ' if failed else ''}{why}")
    party.fresh()  # a fresh party; tunnels resolve to it once it listens


async def attempt_timeout(ctx: NodeContext, deadline: int) -> float:
    """An MPC attempt ends just before the first slot boundary at least MPC_MIN_ATTEMPT s
    away (at most mpc_timeout), so it never overlaps the next retry slot."""
    slot = ctx.cfg.mpc_timeout + MPC_SLOT_GAP
    last = deadline - MPC_REPORT_MARGIN
    now = await ctx.chain_now()
    k = int((last - now - MPC_MIN_ATTEMPT) // slot)
    end = last - max(k, 0) * slot
    return max(MPC_MIN_ATTEMPT, min(ctx.cfg.mpc_timeout, end - now - 1))


def tunnel_key(ctx: NodeContext, task_id: int, round: int = 0) -> str:
    return f"mpc:{ctx.chain_id}:{ctx.contract.lower()}:{task_id}:{round}"


def accept_tunnels(ctx: NodeContext, rt: TaskRuntime, peers: list[str], party: Party) -> None:
    """Let exactly this task's committee members reach our MPyC party, once it listens."""
    key = tunnel_key(ctx, rt.task_id, rt.round)
    members = set(peers)

    async def resolve(peer_id: str, k: str) -> tuple[str, int] | None:
        if k != key or peer_id not in members:
            log.warning("tunnel for %s from %s refused", k, peer_id)
            return None
        with trio.move_on_after(ctx.cfg.mpc_timeout):
            await party.started.wait()
        if not party.started.is_set():
            return None
        return ("127.0.0.1", party.port)

    # only the lower seats dial us (MPyC's pattern), each as the seat it holds on chain
    assert rt.seat is not None
    ctx.host.set_tunnel_target(key, resolve, SeatBinding(dict(enumerate(peers[: rt.seat]))))


async def run_party(
    ctx: NodeContext,
    rt: TaskRuntime,
    params: TaskParams,
    peers: list[str],
    m: int,
    timeout: float,
    party: Party,
) -> AggregateResult:
    assert rt.seat is not None and rt.params is not None
    key = tunnel_key(ctx, rt.task_id, rt.round)
    remote = {i: p for i, p in enumerate(peers) if i != rt.seat}
    order = [o.lower() for o in params.owners]
    shares = [list(rt.contributions[o].shares) for o in order]
    async with tunnel_forwarders(ctx.host, key, remote, rt.seat) as ports:
        own = party.port
        parties = [("127.0.0.1", own if i == rt.seat else ports[i]) for i in range(m)]
        job = MpcJob(
            task_id=rt.task_id,
            program=params.program,
            kind=params.kind,
            frac_bits=params.frac_bits,
            bit_length=params.bit_length,
            index=rt.seat,
            parties=parties,
            threshold=threshold_for(m),
            shares=shares,
            value_bound=task_bound(params)[0],  # owners append influence witnesses
            commitments=[sharing_commitment(rt.contributions[o].commitment) for o in order],
        )
        rt.advance(TaskState.COMPUTING)
        log.info("task %d: MPC party %d of %d starting", rt.task_id, rt.seat, m)
        t0 = time.monotonic()
        # tunnels into our party wait for this event: it is set once the party listens
        out = await ctx.executor.run_party(job, timeout=timeout, listening=party.started)
        ctx.metrics.observe("mpc_seconds", time.monotonic() - t0)
    log.info("task %d: MPC done", rt.task_id)
    rt.transcript = bytes.fromhex(out.transcript) if out.transcript else None
    return AggregateResult.from_fractions(out.values(), out.count)
