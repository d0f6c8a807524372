"""What a node knows about one task (one runtime per task and round), and the task state.

The state is one explicit, ordered enum: it only moves forward (a chain event may skip steps,
e.g. another member reports before this node computed). What a step waits for is a condition
over the runtime (its state, params, shares, signatures); every change notifies, and
``until(cond)`` wakes on changes, so there is one waiting primitive per task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import trio

from dnode.node.protocol import Contribution, SignatureMessage
from dnode.oracle.reporter import SignatureSet
from dnode.scheduler.programs import TaskParams


class TaskState(IntEnum):
    WATCHING = 0  # posted (or disputed): params learnt, a seat considered
    FORMED = 1  # the committee is bound on-chain (this node may or may not hold a seat)
    COMPUTING = 2  # this node's engine runs; late inputs are refused
    SIGNED = 3  # this node signed its result (signing protection) and shares the signature
    REPORTED = 4  # a result of this round is on-chain
    FAILED = 5  # failed on this node (its seat given up unless it had signed); not yet closed
    CLOSED = 6  # finalized, refunded or the dispute resolved


@dataclass
class TaskRuntime:
    """What the node knows and waits for about one task."""

    task_id: int
    round: int = 0  # 0: the task's committee; 1: its re-execution committee (a dispute)
    params: TaskParams | None = None
    seat: int | None = None
    committee: list[str] = field(default_factory=list)
    contributions: dict[str, Contribution] = field(default_factory=dict)
    intents: dict[str, bytes] = field(default_factory=dict)  # address (lower) -> join sig
    signatures: SignatureSet | None = None
    state: TaskState = TaskState.WATCHING
    peer_declined: bool = False  # another member gave its seat up: no full MPC possible
    worker_started: bool = False
    restored: bool = False  # the seat was held before this process started (crash/restart)
    # issue 12 claim period (node.task.claim): a skipped better-ranked candidate took our
    # seat (the worker stops, nothing is signed), or this node runs a claim attempt
    displaced: bool = False
    claiming: bool = False
    claims_seen: int = 0  # SeatClaimed events of this round seen (wakes staggered claims)
    cosigned: bool = False  # node.task.cosign sent our left-out signature
    # node.mpc.commitments: our session transcript (None for HE) and peers' signatures that
    # arrived before our own (checked against the transcript once it exists)
    transcript: bytes | None = None
    pending_signatures: list[tuple[str, SignatureMessage]] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event, repr=False)

    # ---- transitions ----------------------------------------------------------------------

    def advance(self, to: TaskState) -> None:
        """Move the state forward to ``to`` (never back)."""
        if to > self.state:
            self.state = to
            self.notify()

    def set_params(self, params: TaskParams | None) -> None:
        self.params = params
        self.notify()

    def notify(self) -> None:
        """Wake every ``until``: something a step may wait for changed."""
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, cond: Callable[[], bool]) -> None:
        """Wait until ``cond()`` holds (checked after each change)."""
        while not cond():
            await self._changed.wait()

    # ---- conditions -----------------------------------------------------------------------

    def knows_params(self) -> bool:
        return self.params is not None

    def is_formed(self) -> bool:
        return self.state >= TaskState.FORMED

    def is_signed(self) -> bool:
        return self.state >= TaskState.SIGNED

    def is_computing(self) -> bool:
        return self.state >= TaskState.COMPUTING

    def is_reported(self) -> bool:
        return self.state >= TaskState.REPORTED

    def is_closed(self) -> bool:
        return self.state >= TaskState.CLOSED

    def is_displaced_or_closed(self) -> bool:
        return self.displaced or self.is_closed()

    def is_failed(self) -> bool:
        return self.state == TaskState.FAILED

    def inputs_complete(self) -> bool:
        return self.params is not None and len(self.contributions) == len(self.params.owners)

    def has_quorum(self) -> bool:
        return self.signatures is not None and self.signatures.quorum_result() is not None

    def declined(self) -> bool:
        return self.peer_declined


TASK_STATES = ("watching", "seated", "computing", "reported", "closed", "failed", "displaced")


def task_state(rt: TaskRuntime) -> str:
    """The runtime's label in metrics and ``dnode status`` (TASK_STATES)."""
    if rt.state == TaskState.FAILED:
        return "failed"
    if rt.state == TaskState.CLOSED:
        return "closed"
    if rt.displaced:  # a better-ranked candidate claimed this node's seat (issue 12)
        return "displaced"
    if rt.state == TaskState.REPORTED:
        return "reported"
    if rt.state >= TaskState.COMPUTING:
        return "computing"
    return "seated" if rt.seat is not None else "watching"
