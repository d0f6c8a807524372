"""The MPC engine: one MPyC party per committee member, over libp2p tunnels, with retry slots.

``compute`` waits for every data owner's shares, then runs this node's party of the program's
kernel (``spec.kernel``) in a child process (:mod:`node.mpc.party`); the parties reach each
other only through authenticated tunnels keyed by the task. If an attempt fails (a party was
killed, a tunnel broke), every member retries at the next boundary of a grid of wall-clock
slots (:func:`slot_plan`: every ``MPC_SLOT`` seconds of Unix time, the same on every member
whose clock is synchronised), so restarted members and the others start fresh parties
together; each attempt has its own tunnel key, so no party ever reaches a stale one.
``encode_result`` turns what the kernel opened into the public output (``spec.finish``) and
encodes it with the ``tensor`` codec (:mod:`oracle.codecs`); a private result (params
``result_key``) is the digest of the sealed boxes every node stores and serves as a blob
(``private`` codec; :mod:`node.mpc.delivery`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import cast

import trio

from dnode.node.aggregation import enforce as enforce_min_aggregation
from dnode.node.aggregation import values_per_owner
from dnode.node.blobs import blob_digest
from dnode.node.engines.base import ComputeSession, EngineRefused, PreparedTask, RawResult
from dnode.node.errors import CheatingDetectedError, MpcError, leaves
from dnode.node.mpc.commitments import sharing_commitment
from dnode.node.mpc.executor import MpcJob, MpcResult, SubprocessExecutor, free_port
from dnode.node.mpc.influence import task_witness
from dnode.node.transport import SeatBinding
from dnode.node.tunnel import tunnel_forwarders
from dnode.oracle.codecs import PrivateCodec, TensorCodec
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.errors import SchedulerError
from dnode.scheduler.programs.params import TaskParams, threshold_for
from dnode.scheduler.programs.registry import ProgramSpec

log = logging.getLogger("dnode.node.mpc")

MPC_SLOT = 30.0  # seconds of wall-clock time between retry boundaries (a protocol constant)
MPC_SLOT_GAP = 5.0  # seconds between the end of one MPC attempt and the next boundary
MPC_REPORT_MARGIN = 30.0  # seconds kept before the report deadline to sign and report
NO_TIME_LEFT = "no time left before the deadline"
MPC_MIN_ATTEMPT = 25.0  # shortest MPC attempt worth starting (tunnels open in seconds)


def attempt_end(start: float, attempt_timeout: float) -> float:
    """When an attempt begun at wall time ``start`` ends: ``MPC_SLOT_GAP`` before a grid
    boundary, at most ``attempt_timeout`` after ``start`` and at least ``MPC_MIN_ATTEMPT``
    (members with the same timeout that begin in the same slot end together)."""
    longest = max(attempt_timeout, MPC_MIN_ATTEMPT)
    b = math.floor((start + longest + MPC_SLOT_GAP) / MPC_SLOT) * MPC_SLOT
    if b - MPC_SLOT_GAP < start + MPC_MIN_ATTEMPT:
        b = math.ceil((start + MPC_MIN_ATTEMPT + MPC_SLOT_GAP) / MPC_SLOT) * MPC_SLOT
    return b - MPC_SLOT_GAP


def next_boundary(now: float) -> int:
    """Index of the first grid boundary after wall time ``now`` (boundary k is k * MPC_SLOT)."""
    return math.floor(now / MPC_SLOT) + 1


def slot_plan(now: float, time_left: float) -> int | None:
    """The boundary index of the next retry, or None when an attempt begun there could not
    run ``MPC_MIN_ATTEMPT`` seconds before the deadline (``time_left`` seconds from ``now``)."""
    k = next_boundary(now)
    if k * MPC_SLOT + MPC_MIN_ATTEMPT > now + time_left:
        return None
    return k


MPC_JOIN_MIN = 10.0  # seconds an attempt must still run for a restarted member to join it


def current_slot(now: float, attempt_timeout: float, time_left: float) -> int | None:
    """The boundary index of the attempt a member restarted at ``now`` can still join, or None.

    The other members began their attempt at the last boundary and wait ``attempt_timeout``
    for every party to connect: a member killed just before or after that boundary (its
    party never connected, or the others' parties exited when it died) can start a fresh
    party for the same attempt instead of sitting out until the next boundary -- with kills
    every ~30 s, that next boundary is often past the deadline. Only when the attempt fits
    in its slot (it then ends before the next boundary, where the member can still retry
    with everyone), still runs ``MPC_JOIN_MIN`` s and ends before the deadline."""
    k = math.floor(now / MPC_SLOT)
    end = attempt_end(k * MPC_SLOT, attempt_timeout)
    if end > (k + 1) * MPC_SLOT - MPC_SLOT_GAP + 1e-9:
        return None  # a longer attempt: the last boundary may not be where the others began
    if end - now < MPC_JOIN_MIN or end > now + time_left:
        return None
    return k


class _Party:
    """This node's current party: its listen port and when it listens (tunnels wait on it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.listening = trio.Event()

    def fresh(self) -> None:
        self.port = free_port()
        self.listening = trio.Event()


class MpcEngine:
    capability = "mpc"

    def prepare(self, spec: ProgramSpec, params: TaskParams, task_dir: Path) -> PreparedTask:
        try:
            spec.validate(params)
            bits = params.bit_length
        except SchedulerError as e:
            raise EngineRefused(0, str(e)) from None
        return PreparedTask(0, spec, params, task_dir, plan={"bit_length": bits})

    async def compute(self, prepared: PreparedTask, session: ComputeSession) -> RawResult:
        party = _Party()
        out = await self._run(prepared, session, party)
        prepared = dataclasses.replace(prepared, task_id=session.task_id)
        record = {"rows": out.rows, "revealed_keys": sorted(out.revealed)}
        if out.bundle is not None:  # private: every node serves the same sealed boxes
            if session.blobs is None:
                raise MpcError(session.task_id, "a private result needs this node's blob store")
            record["bundle"] = "0x" + session.blobs.store.put(out.bundle).hex()
        if out.transcript:  # node.mpc.commitments: co-signers' tags are checked on it
            record["transcript"] = out.transcript
        return RawResult(prepared, out, record)

    def encode_result(self, spec: ProgramSpec, raw: RawResult) -> bytes:
        out = cast(MpcResult, raw.data)
        if out.bundle is not None:  # only the requester can open it: report its digest
            return PrivateCodec().encode_report(blob_digest(out.bundle))
        try:
            o = spec.finish(raw.prepared.params, out.revealed, out.rows)
        except SchedulerError as e:
            raise MpcError(raw.prepared.task_id, str(e)) from None
        return TensorCodec().encode(AggregateResult.from_fractions(o.values, o.count))

    # ---- the attempts ------------------------------------------------------------------

    async def _run(self, prepared: PreparedTask, s: ComputeSession, party: _Party) -> MpcResult:
        params = prepared.params
        # restarted with every share: the others' session broke, they retry in the slots
        aligned = s.restored and s.inputs_complete.is_set()
        with trio.move_on_after(params.input_timeout):
            await s.inputs_complete.wait()
        if not s.inputs_complete.is_set():
            raise MpcError(
                s.task_id,
                f"only {len(s.inputs)} of {len(params.owners)} data owners delivered shares",
            )
        # a published aggregate of too few owners/values reveals them: decline, never compute
        enforce_min_aggregation(s.task_id, params.extra, values_per_owner(params, s.inputs))
        # the first attempt starts when the inputs are in; a retry at a grid boundary, and
        # ends by the boundary's clock, not the member's (a late member ends with the others)
        if aligned:
            attempt, begun = await self._join_or_await_slot(s, party)
        else:
            attempt, begun = "a0", time.time()
        while True:
            failed: MpcError | None = None
            key = f"{session_key(s)}:{attempt}"
            self._accept_tunnels(s, key, party)
            try:
                end = attempt_end(begun, s.attempt_timeout)
                return await self._attempt(prepared, s, key, party, end - time.time())
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
            finally:
                s.host.remove_tunnel_target(key)
            log.info("task %d: MPC attempt failed (%s)", s.task_id, failed.detail)
            if failed.connected and prepared.spec.dp_plan(params) is not None:
                # the parties had connected: the kernel may have opened its noisy values, and
                # a retry would open a second, independent noisy release the task never paid
                # for -- the round fails instead (refunded; the budget stays charged)
                raise MpcError(s.task_id, f"{failed.detail}; a DP attempt is not retried once "
                               "its parties connected")  # fmt: skip
            attempt, begun = await self._await_slot(s, party, failed)

    async def _join_or_await_slot(self, s: ComputeSession, party: _Party) -> tuple[str, float]:
        """A restarted member: the attempt in progress if it can still join it
        (:func:`current_slot`), else the next boundary."""
        now = time.time()
        last = s.deadline - MPC_REPORT_MARGIN
        k = current_slot(now, s.attempt_timeout, last - await s.chain_now())
        if k is None:
            return await self._await_slot(s, party)
        log.info("task %d: joining the MPC attempt in progress (slot %d)", s.task_id, k)
        party.fresh()
        return f"s{k}", k * MPC_SLOT

    async def _await_slot(
        self, s: ComputeSession, party: _Party, failed: MpcError | None = None
    ) -> tuple[str, float]:
        """Sleep until the next boundary of the retry grid and name that attempt, or raise
        ``failed`` if no attempt fits before the report deadline.

        The grid is wall-clock time (:func:`slot_plan`), not chain time: a devnet stamps each
        block at least a second after its parent, so its clock runs ahead of the wall under
        load, and members reading different blocks would pick different slots (their parties
        would never meet). Chain time only bounds how many slots are left."""
        last = s.deadline - MPC_REPORT_MARGIN  # no attempt may run past this chain time
        now = time.time()
        k = slot_plan(now, last - await s.chain_now())
        if k is not None and not s.abort.is_set():
            start = k * MPC_SLOT
            log.info("task %d: next MPC attempt in %.0f s (slot %d)", s.task_id, start - now, k)
            with trio.move_on_after(max(0.0, start - time.time())):
                await s.abort.wait()
        if k is None or s.abort.is_set():
            why = "a member declined its seat" if k is not None else NO_TIME_LEFT
            raise MpcError(s.task_id, f"{failed.detail + '; ' if failed else ''}{why}")
        party.fresh()  # a fresh party; tunnels resolve to it once it listens
        return f"s{k}", start

    def _accept_tunnels(self, s: ComputeSession, key: str, party: _Party) -> None:
        """Let exactly this task's committee members reach our MPyC party, once it listens."""
        members = set(s.peers)

        async def resolve(peer_id: str, k: str) -> tuple[str, int] | None:
            if k != key or peer_id not in members:
                log.warning("tunnel for %s from %s refused", k, peer_id)
                return None
            with trio.move_on_after(s.attempt_timeout):
                await party.listening.wait()
            if not party.listening.is_set():
                return None
            return ("127.0.0.1", party.port)

        # only the lower seats dial us (MPyC's pattern), each as the seat it holds on chain
        s.host.set_tunnel_target(key, resolve, SeatBinding(dict(enumerate(s.peers[: s.seat]))))

    async def _attempt(
        self, prepared: PreparedTask, s: ComputeSession, key: str, party: _Party, timeout: float
    ) -> MpcResult:
        params, spec = prepared.params, prepared.spec
        m = len(s.peers)
        remote = {i: p for i, p in enumerate(s.peers) if i != s.seat}
        order = [o.lower() for o in params.owners]
        shares = [list(s.inputs[o].shares) for o in order]
        async with tunnel_forwarders(s.host, key, remote, s.seat) as ports:
            parties = [("127.0.0.1", party.port if i == s.seat else ports[i]) for i in range(m)]
            job = MpcJob(
                task_id=s.task_id,
                program=spec.name,
                kernel=spec.kernel,
                args=spec.kernel_args(params),
                width=spec.width(params),
                bit_length=params.bit_length,
                index=s.seat,
                parties=parties,
                threshold=threshold_for(m),
                shares=shares,
                witness=task_witness(params),  # owners append influence witnesses
                commitments=[sharing_commitment(s.inputs[o].commitment) for o in order],
                result_key=params.result_key or None,
                modulus=params.field_prime,
            )
            s.started()
            log.info("task %d: MPC party %d of %d starting", s.task_id, s.seat, m)
            t0 = time.monotonic()
            executor = s.executor or SubprocessExecutor()
            # tunnels into our party wait for this event: it is set once the party listens
            out = await executor.run_party(job, timeout=timeout, listening=party.listening)
            s.observe("mpc_seconds", time.monotonic() - t0)
        log.info("task %d: MPC done", s.task_id)
        return cast(MpcResult, out)


def session_key(s: ComputeSession) -> str:
    """The tunnel key of this committee's session: chain, contract, task and round."""
    return f"mpc:{s.namespace}:{s.task_id}:{s.round}"
