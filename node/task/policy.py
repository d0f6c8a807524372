"""Seat policy as plain functions (no processes, no chain): who may re-execute a disputed
task, which committee to bind from the intents seen, what a restarted node does with a seat."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dnode.contracts.client import TERMINAL_STATUSES, TaskStatus
from dnode.scheduler.sortition import Candidate


def rerun_ineligible(task: Any, address: str) -> str | None:
    if task.status != TaskStatus.DISPUTED:
        return f"task is {task.status.name.lower()}"
    a = address.lower()
    if a in (c.lower() for c in task.committee):
        return "in the original committee"
    if a == task.requester.lower():
        return "the requester"
    if task.dispute is not None and a == task.dispute.disputer.lower():
        return "the disputer"
    return None


@dataclass(frozen=True)
class OpenView:
    """A disputed task as ``should_claim`` sees a seat on its re-execution committee."""

    capability: int
    committee_size: int
    status: TaskStatus = TaskStatus.OPEN
    seats_taken: int = 0


@dataclass(frozen=True)
class CommitteeChoice:
    """Who this node would bind as the committee, from the ranking and the intents seen."""

    chosen: list[Candidate]  # the m best-ranked candidates whose join intents arrived
    missing: list[str]  # best-ranked (top m) candidates that have not offered yet
    position: int | None  # this node's place among the chosen; None: not full or not in it
    wait: bool  # best-ranked candidates still have time to offer before backups are seated


def choose_committee(
    ranked: Sequence[Candidate], intents: Container[str], m: int, me: str, waited: float,
    backup_wait: float,
) -> CommitteeChoice:  # fmt: skip
    """The committee is the m best-ranked candidates whose intents arrived; a best-ranked
    candidate that has not offered within ``backup_wait`` seconds (``waited`` since the
    ranking was known) is passed over for the next-ranked one. ``me`` is lower case."""
    arrived = [c for c in ranked if c.address.lower() in intents]
    chosen = arrived[:m]
    members = [c.address.lower() for c in chosen]
    missing = [c.address for c in ranked[:m] if c.address.lower() not in intents]
    ready = len(chosen) == m and me in members
    return CommitteeChoice(
        chosen,
        missing,
        members.index(me) if ready else None,
        ready and bool(missing) and waited < backup_wait,
    )


class Resume(Enum):
    """What a restarted node does with a seat its state db says it held."""

    CLOSE = "close"  # the task is over, or the seat is not (or no longer) this node's
    WORK = "work"  # run the worker again: it signed, computed, or can rerun the MPC
    ABANDON = "abandon"  # inputs lost: give the seat up rather than be slashed later
    SETTLE = "settle"  # reported or disputed: finalize or see the dispute through
    NOTHING = "nothing"


def resume_action(
    task: Any, round: int, seat: int, me: str, *, signed: bool, computed: bool, can_rerun: bool
) -> Resume:
    """The restart decision for a held seat, from the chain's record of the task."""
    seats = task.dispute.committee if round and task.dispute else list(task.committee)
    declined = task.dispute.declined_bitmap if round and task.dispute else task.declined_bitmap
    seated = seat < len(seats) and seats[seat].lower() == me.lower()
    if task.status in TERMINAL_STATUSES or not seated or declined >> seat & 1:
        return Resume.CLOSE
    working = TaskStatus.RECOMPUTING if round else TaskStatus.COMPUTING
    if task.status == working:
        return Resume.WORK if signed or computed or can_rerun else Resume.ABANDON
    if round == 0 and task.status in (
        TaskStatus.REPORTED,
        TaskStatus.DISPUTED,
        TaskStatus.RECOMPUTING,
    ):
        return Resume.SETTLE
    return Resume.NOTHING
