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


# ---- issue 12: claiming a skipped seat back, co-signing a report that left us out ---------


@dataclass(frozen=True)
class RoundView:
    """One round's committee as the chain records it (the task's, or the re-execution's)."""

    members: tuple[str, ...]
    draws: tuple[int, ...]
    claims_until: int  # 0: no claim period (nobody skipped, or every skip used up)
    excluded: frozenset[str]  # lower case: may not sit (requester; disputer and first committee)


def round_view(task: Any, round: int) -> RoundView | None:
    """The round's committee, draws and claim period (None: not formed)."""
    if round:
        d = task.dispute
        if d is None or not d.committee:
            return None
        excluded = {a.lower() for a in task.committee} | {
            task.requester.lower(),
            d.disputer.lower(),
        }
        return RoundView(
            tuple(d.committee), tuple(d.seat_draws()), d.claims_until, frozenset(excluded)
        )
    if not task.committee:
        return None
    return RoundView(
        tuple(task.committee),
        tuple(task.draws),
        int(task.claims_until),
        frozenset({task.requester.lower()}),
    )


@dataclass(frozen=True)
class ClaimPlan:
    """Whether this node sends ``claim_seat`` now, and for which seat."""

    ok: bool
    reason: str = ""
    seat: int | None = None  # the worst-ranked seat the claim displaces
    displaced: str = ""
    final: bool = False  # not ok, and nothing in this claim period can change that


def claim_plan(view: RoundView, me: str, my_draw: int | None, now: int) -> ClaimPlan:
    """A candidate the formation skipped takes its seat back when its draw ranks above the
    committee's worst member's, during the claim period (the contract's ``claim_seat``
    rule; eligibility and seat terms are checked by the caller). ``now``: the latest block's
    timestamp, ``me`` lower case."""
    if not view.claims_until:
        return ClaimPlan(False, "no claim period (the formation skipped nobody)", final=True)
    if now >= view.claims_until:
        return ClaimPlan(False, "the claim period is over", final=True)
    members = [a.lower() for a in view.members]
    if me in members:
        return ClaimPlan(False, "already seated", final=True)
    if me in view.excluded:
        return ClaimPlan(False, "may not sit on this committee", final=True)
    if my_draw is None:
        return ClaimPlan(False, "not drawn above the worst member (or not eligible)", final=True)
    worst = max(range(len(view.draws)), key=lambda i: view.draws[i])
    if my_draw >= view.draws[worst]:
        # a member's draw only goes down with claims: this cannot improve
        return ClaimPlan(
            False,
            f"draw {my_draw} ranks below the committee's worst member (draw {view.draws[worst]})",
            final=True,
        )
    return ClaimPlan(True, seat=worst, displaced=view.members[worst])


def claim_position(my_draw: int, view: RoundView, ranked_draws: Sequence[int]) -> int:
    """This node's place among the candidates that may claim now (0: the best-ranked): the
    best-ranked claims first and the others re-check after a stagger, so a claim that a
    better-ranked one makes pointless is not sent."""
    worst = max(view.draws)
    seated = set(view.draws)
    ahead = [d for d in ranked_draws if d < my_draw and d < worst and d not in seated]
    return len(ahead)


@dataclass(frozen=True)
class CosignDecision:
    ok: bool
    reason: str = ""
    mismatch: bool = False  # our own result differs from the reported one


def cosign_decision(
    task: Any, me: str, our_digest: bytes | None, now: int, challenge_period: int
) -> CosignDecision:
    """A member left out of the report's signers adds its signature during the challenge
    window, but only if it signed the very result that was reported (round 0 only: the
    contract's ``cosign`` rule)."""
    if task.status != TaskStatus.REPORTED:
        return CosignDecision(False, f"task is {task.status.name.lower()}")
    members = [a.lower() for a in task.committee]
    if me not in members:
        return CosignDecision(False, "holds no seat in the committee")
    seat = members.index(me)
    if task.declined_bitmap >> seat & 1:
        return CosignDecision(False, "this seat declined")
    if task.signers_bitmap >> seat & 1:
        return CosignDecision(False, "already among the report's signers")
    if our_digest is None:
        return CosignDecision(False, "this node has not signed a result")
    if our_digest != task.result_digest:
        return CosignDecision(
            False,
            f"our result 0x{our_digest.hex()[:16]}.. differs from the reported "
            f"0x{task.result_digest.hex()[:16]}..",
            mismatch=True,
        )
    if now >= task.reported_at + challenge_period:
        return CosignDecision(False, "the challenge window is closed")
    return CosignDecision(True)
