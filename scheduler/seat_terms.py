"""Whether a committee seat's terms are worth taking, and how long a node keeps trying to
take one: the node-side half of issue 12's "nobody can mute honest candidates" and
"deadlines that cannot be gamed" (the contract enforces the floors; a node may ask more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PARAMS_WAIT_FLOOR = 30.0  # seconds a node looks for a task's params at least
MIN_REWARD_TO_RISK = 0.0  # reward per seat / collateral at risk a node accepts by default


@dataclass(frozen=True)
class Terms:
    ok: bool
    reason: str = ""


def params_wait(seat_deadline: int, now: int) -> float:
    """Seconds to keep asking peers for a task's params: the whole seat window (a requester
    that withholds them until its own nodes are seated must not mute honest candidates)."""
    return max(PARAMS_WAIT_FLOOR, float(seat_deadline - now))


def claims_wait(task: Any, now: int) -> float:
    """Seconds until the claim period of a formation that skipped someone ends (0: none);
    the contract refuses a report before it."""
    until = int(getattr(task, "claims_until", 0) or 0)
    return float(max(0, until - now))


def seat_terms(
    reward_per_seat: int,
    collateral: int,
    compute_window: int,
    program_seconds: float = 0.0,
    min_reward_to_risk: float = MIN_REWARD_TO_RISK,
) -> Terms:
    """Decline seats whose compute window cannot fit the program (the node would be slashed
    for a deadline it could not meet) or whose reward is too small for the collateral put
    at risk (``min_reward_to_risk`` is the node's own policy)."""
    if compute_window and program_seconds and compute_window < program_seconds:
        return Terms(
            False,
            f"compute window {compute_window} s is shorter than the program needs "
            f"(~{program_seconds:.0f} s)",
        )
    if collateral and reward_per_seat < min_reward_to_risk * collateral:
        return Terms(
            False,
            f"reward {reward_per_seat} wei per seat is below {min_reward_to_risk:g} x the "
            f"{collateral} wei collateral at risk",
        )
    return Terms(True)
