"""Whether a formed committee is the one the ranked sortition allows, recomputed from chain
data: what a data owner checks before it sends a committee shares, and what a node checks
before it computes (docs/protocol.md, "Committee sortition").

The contract already refuses committees that break the rule; recomputing it off-chain guards
the data owner against a lying RPC endpoint or a client bug, and tells it when the claim
period (skipped candidates displacing the worst-ranked members) is still open, during which
shares could reach a member about to be displaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dnode.scheduler.candidates import Candidates, Pool, round_terms
from dnode.scheduler.errors import CommitteeNotRanked, SeatClaimsOpen
from dnode.scheduler.sortition import MAX_DRAW


@dataclass(frozen=True)
class CommitteeVerdict:
    members: tuple[str, ...]
    draws: tuple[int, ...]
    skipped: int  # eligible candidates ranked above a member that hold no seat (offline...)


def _pool(chain: Any, task: Any, round: int) -> Pool:
    """The round's pool with the seed read from the node (any age: off-chain, blockhash's
    256-block horizon does not apply)."""
    terms = round_terms(chain, task, round)
    if terms is None:
        raise CommitteeNotRanked(task.task_id, round, "no dispute: no re-execution committee")
    h = chain.block_hash(terms.seed_block)
    if not h:
        raise CommitteeNotRanked(task.task_id, round, f"seed block {terms.seed_block} not found")
    return Pool(
        seed=bytes.fromhex(h[2:]),
        task_id=task.task_id,
        round=round,
        seats=terms.seats,
        capability=task.capability,
        offer=terms.offer,
        window=MAX_DRAW + 1,
        slot_count=terms.slot_count,
        excluded=terms.excluded,
    )


def verify_committee(
    chain: Any, task_id: int, round: int = 0, owners: Iterable[str] = ()
) -> CommitteeVerdict:
    """Raise CommitteeNotRanked if the round's committee does not follow the ranking (a
    member not holding its recorded draw or drawn earlier than it claims, a data owner
    seated), SeatClaimsOpen while skipped candidates may still claim seats; else the
    verdict."""
    task = chain.task_info(task_id)
    if round:
        d = task.dispute
        if d is None or not d.committee:
            raise CommitteeNotRanked(task_id, round, "no re-execution committee formed")
        members, draws, until = list(d.committee), d.seat_draws(), d.claims_until
    else:
        if not task.committee:
            raise CommitteeNotRanked(task_id, round, "no committee formed")
        members, draws, until = list(task.committee), list(task.draws), task.claims_until
    if until and chain.block_timestamp("latest") < until:
        raise SeatClaimsOpen(task_id, until)
    owner_set = {o.lower() for o in owners}
    seated_owners = [m for m in members if m.lower() in owner_set]
    if seated_owners:
        raise CommitteeNotRanked(task_id, round, f"data owner {seated_owners[0]} holds a seat")
    cands = Candidates(chain, _pool(chain, task, round))
    chk = cands.check(members, draws)
    if not chk.ok:
        raise CommitteeNotRanked(task_id, round, chk.reason)
    return CommitteeVerdict(tuple(members), tuple(draws), chk.skips)


def verified_committee(
    chain: Any, task_id: int, round: int, owners: Iterable[str], timeout: float = 120.0
) -> CommitteeVerdict:
    """verify_committee, waiting (at most ``timeout`` seconds) for an open claim period to
    end: the data owner's one call before it sends shares."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return verify_committee(chain, task_id, round, owners)
        except SeatClaimsOpen as e:
            left = e.until - chain.block_timestamp("latest")
            if time.monotonic() + left > deadline:
                raise
            time.sleep(min(max(left, 0) + 1, 5))
