"""The owner's policy and its decision over one task offer: a pure function (no I/O), so
every rule is tested with in-memory values and the on-chain dataset fields plug in through
:class:`TaskOffer` alone (see ``node.owner.offer``).

Outcomes: ``accept`` (contribute now), ``pending`` (outside the policy: the owner decides
with ``dnode owner approve|reject``), ``reject`` (a deny-listed requester, or the policy says
``outside = "reject"``). Every outcome but accept carries the reasons, in words the requester
can read in ``dnode task status``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

ACCEPT, PENDING, REJECT = "accept", "pending", "reject"


@dataclass(frozen=True)
class TaskOffer:
    """What one task offers one of the owner's datasets.

    ``price`` and ``privacy_cost`` are None while the chain does not record them (tasks
    name no datasets yet); a policy that asks for a price then keeps the task pending."""

    task_id: int
    program: str  # program name, e.g. "mpc.mean"
    program_id: str  # 0x keccak(name), as the chain stores it
    family: str  # the program's declared family ("" if none)
    reward: int  # the task's escrowed reward (wei), all seats together
    requester: str
    dataset: str  # the name of the owner's dataset the task would use
    price: int | None = None  # wei the task pays this dataset (on-chain datasets)
    privacy_cost: float | None = None  # epsilon (or rho) the task spends of this dataset


@dataclass(frozen=True)
class Policy:
    """One dataset's rules. Empty ``programs`` allows any program; entries are program names,
    globs ("mpc.*"), 0x program ids or ``family:NAME``. Amounts in wei; ``rate_limit``: most
    tasks accepted per hour (0: no limit)."""

    programs: tuple[str, ...] = ()
    min_reward: int = 0
    min_price: int = 0
    max_privacy_cost: float | None = None
    rate_limit: int = 0
    requesters_allow: tuple[str, ...] = ()
    requesters_deny: tuple[str, ...] = ()
    outside: str = PENDING  # what happens to a task outside the policy: pending or reject


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def program_allowed(policy: Policy, offer: TaskOffer) -> bool:
    if not policy.programs:
        return True
    for entry in policy.programs:
        e = entry.strip()
        if e.lower().startswith("0x"):
            if e.lower() == offer.program_id.lower():
                return True
        elif e.startswith("family:"):
            if offer.family and e[len("family:") :] == offer.family:
                return True
        elif fnmatch.fnmatchcase(offer.program, e):
            return True
    return False


def decide(policy: Policy, offer: TaskOffer, accepted_last_hour: int = 0) -> Verdict:
    """The verdict of ``policy`` on ``offer``; ``accepted_last_hour``: tasks this dataset
    was contributed to in the hour before (for the rate limit)."""
    who = offer.requester.lower()
    if who in {a.lower() for a in policy.requesters_deny}:
        return Verdict(REJECT, (f"requester {offer.requester} is deny-listed",))
    reasons: list[str] = []
    allow = {a.lower() for a in policy.requesters_allow}
    if allow and who not in allow:
        reasons.append(f"requester {offer.requester} is not on the allow list")
    if not program_allowed(policy, offer):
        reasons.append(f"program {offer.program} is not allowed for dataset {offer.dataset}")
    if offer.reward < policy.min_reward:
        reasons.append(f"reward {offer.reward} wei is below the minimum {policy.min_reward} wei")
    if policy.min_price:
        if offer.price is None:
            reasons.append(f"the task pays no price for dataset {offer.dataset}")
        elif offer.price < policy.min_price:
            reasons.append(f"price {offer.price} wei is below the minimum {policy.min_price} wei")
    cap, cost = policy.max_privacy_cost, offer.privacy_cost
    if cap is not None and cost is not None and cost > cap:
        reasons.append(f"privacy cost {cost:g} exceeds the per-task cap {cap:g}")
    if policy.rate_limit and accepted_last_hour >= policy.rate_limit:
        reasons.append(f"rate limit: {policy.rate_limit} task(s) per hour already contributed")
    if not reasons:
        return Verdict(ACCEPT)
    return Verdict(REJECT if policy.outside == REJECT else PENDING, tuple(reasons))
