"""What a node knows and waits for about one task (one runtime per task and round)."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from node.protocol import Contribution
from oracle.reporter import SignatureSet
from scheduler.programs import TaskParams


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
    intent_added: trio.Event = field(default_factory=trio.Event)
    signatures: SignatureSet | None = None
    params_known: trio.Event = field(default_factory=trio.Event)
    formed: trio.Event = field(default_factory=trio.Event)
    inputs_complete: trio.Event = field(default_factory=trio.Event)
    quorum: trio.Event = field(default_factory=trio.Event)
    reported: trio.Event = field(default_factory=trio.Event)
    closed: trio.Event = field(default_factory=trio.Event)
    party_port: int | None = None
    party_started: trio.Event = field(default_factory=trio.Event)
    computing: bool = False
    worker_started: bool = False
    restored: bool = False  # the seat was held before this process started (crash/restart)
    peer_declined: trio.Event = field(default_factory=trio.Event)  # no full MPC possible
    failed: bool = False


TASK_STATES = ("watching", "seated", "computing", "reported", "closed", "failed")


def task_state(rt: TaskRuntime) -> str:
    if rt.failed:
        return "failed"
    if rt.closed.is_set():
        return "closed"
    if rt.reported.is_set():
        return "reported"
    if rt.computing:
        return "computing"
    return "seated" if rt.seat is not None else "watching"
