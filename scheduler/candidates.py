"""A task's committee candidates as the chain says they are: the sortition of
``scheduler.sortition`` fed with the registry's slots and each drawn node's on-chain terms.

Used by the node (whom to seat, whether it is itself a candidate), by ``dnode task status`` (why
a task is waiting) and by the contract tests (which draw to claim for a member).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dnode.scheduler.sortition import (
    MAX_DRAW,
    SEED_LIFETIME,
    RankCheck,
    Ranking,
    check_committee,
    draw_position,
    first_draws,
    rank,
    skip_budget,
)

MAX_SCAN = 512  # draws examined off-chain at most (a seat may claim draws up to MAX_DRAW)
NO_LIMIT = (1 << 256) - 1
PREFETCH_DRAWS = 16  # slots of the first draws read in one batch; each later batch doubles


@dataclass
class Pool:
    """What ``rank`` needs for one (task, round), read from the chain."""

    seed: bytes
    task_id: int
    round: int
    seats: int
    capability: int
    offer: int  # wei per seat a member must be content with
    window: int  # deepest draw + 1 a seat may claim (MAX_DRAW + 1)
    slot_count: int  # the slot count snapshotted at posting (dispute): draws are modulo it
    excluded: frozenset[str]  # lower-case addresses that may not sit (requester, ...)
    budget: int = 0  # skips a formation landing in the next block may use
    started: int = 0  # posting (dispute) time the skip budget counts from


class Candidates:
    """Chain-backed sortition for one task round (caches reads for one evaluation)."""

    def __init__(self, chain: Any, pool: Pool, owners: Iterable[str] = ()) -> None:
        self.chain = chain
        self.pool = pool
        self.owners = frozenset(o.lower() for o in owners)
        self.collateral = int(chain.deployment.params["seat_collateral"])
        self._holders: dict[int, str | None] = {}
        self._verdicts: dict[str, str | None] = {}
        self._prefetched = 0  # draws j < this have their slots in _holders

    def holder(self, pos: int) -> str | None:
        """The slot's owner. Rankings and checks walk the draws in order, so a miss reads the
        slots of the next draws in one batch (16, then 32, ...): a healthy registry seats a
        committee within a few draws, and reading every slot (a batch of 1,000 calls on a
        node with 20 ether staked per node) cost seconds per task on the devnet."""
        if pos not in self._holders:
            self._prefetch_through(pos)
            if pos not in self._holders:  # not a draw position within MAX_SCAN: read it alone
                self._holders[pos] = self.chain.slot_holder(pos)
        return self._holders[pos]

    def _prefetch_through(self, pos: int) -> None:
        """Batch-read the slots of the next chunk of draws (the walk's next miss is the first
        draw not read yet, so it is in that chunk; a position outside it, e.g. a claimed draw
        deeper than the scan, is read alone)."""
        p = self.pool
        batch = getattr(self.chain, "slot_holders", None)
        lo = self._prefetched
        hi = min(max(PREFETCH_DRAWS, 2 * lo), p.window, MAX_SCAN)
        if batch is None or p.slot_count <= 0 or lo >= hi:
            return
        chunk = {draw_position(p.seed, p.task_id, p.round, j, p.slot_count) for j in range(lo, hi)}
        if pos not in chunk:
            return
        self._holders.update(
            batch(sorted(q for q in chunk if q is not None and q not in self._holders))
        )
        self._prefetched = hi

    def verdict(self, address: str) -> str | None:
        """None if ``address`` could take a seat of this task now, else the reason."""
        key = address.lower()
        if key not in self._verdicts:
            self._verdicts[key] = self._judge(address)
        return self._verdicts[key]

    def _judge(self, address: str) -> str | None:
        key = address.lower()
        if key in self.pool.excluded:
            return "excluded (requester, disputer or first committee)"
        if key in self.owners:
            return "a data owner of the task"
        return self.onchain_verdict(address)

    def onchain_verdict(self, address: str) -> str | None:
        """The contract's per-seat eligibility only (no data-owner rule): whether a drawn
        owner ranked above a member counts as a skip on-chain."""
        info = self.chain.node_info(address)
        if not info.registered:
            return "not registered"
        cap = self.pool.capability
        if info.capabilities & cap != cap:
            return "lacks the task's capability"
        if info.stake - info.locked < self.collateral:
            return "not enough free stake for the seat collateral"
        terms = self.chain.node_terms(address)
        seats = info.locked // self.collateral if self.collateral else 0
        why = terms.admits(self.pool.offer, seats)
        if why == "price":
            return f"price {terms.price} wei > offer {self.pool.offer} wei"
        if why == "capacity":
            return f"at capacity ({seats} of {terms.capacity} seats)"
        return None

    def ranking(self, want: int | None = None, limit: int | None = None) -> Ranking:
        p = self.pool
        scan = min(p.window, limit if limit is not None else MAX_SCAN)
        return rank(p.seed, p.task_id, p.round, p.slot_count, self.holder, self.verdict, scan, want)

    def draws_for(self, members: list[str]) -> dict[str, int]:
        """First draw of each member (absent: not drawn within MAX_DRAW)."""
        p = self.pool
        return first_draws(p.seed, p.task_id, p.round, p.slot_count, self.holder, members, p.window)

    def check(self, members: list[str], draws: list[int], budget: int | None = None) -> RankCheck:
        """The on-chain ranking rule applied to ``members`` (see sortition.check_committee)."""
        p = self.pool
        return check_committee(
            p.seed, p.task_id, p.round, p.slot_count, self.holder, self.onchain_verdict,
            members, draws, p.excluded, budget,
        )  # fmt: skip


def seed_state(chain: Any, seed_block: int) -> tuple[bytes | None, int]:
    """(seed, blocks the next block will be past the seed block); seed None: not mined yet,
    or older than the 256 blocks blockhash reaches (then the second value says how old)."""
    head = chain.latest_block()
    since = head + 1 - seed_block
    if since <= 0:
        return None, since
    if since > SEED_LIFETIME:
        return None, since
    h = chain.block_hash(seed_block)  # hex on the canonical chain, None if absent
    return (bytes.fromhex(h[2:]) if h else None), since


@dataclass(frozen=True)
class RoundTerms:
    """What the chain fixes for one round's sortition (round 0: the committee, round 1: the
    re-execution committee), read from the task record; one copy for every caller."""

    seed_block: int
    seats: int
    excluded: frozenset[str]
    offer: int  # wei per seat (the re-execution is paid the reward, either way)
    slot_count: int  # the slot snapshot the draws are taken modulo
    started: int  # when the skip budget starts growing


def round_terms(chain: Any, task: Any, round: int) -> RoundTerms | None:
    """None for round 1 before a dispute exists."""
    if round:
        d = task.dispute
        if d is None:
            return None
        seats = task.committee_size + 2
        excluded = {a.lower() for a in task.committee} | {
            task.requester.lower(),
            d.disputer.lower(),
        }
        period = int(chain.deployment.params.get("dispute_period", 0))
        return RoundTerms(
            d.seed_block, seats, frozenset(excluded), task.reward // seats, d.slot_snapshot,
            d.seat_deadline - period // 4,
        )  # fmt: skip
    seats = task.committee_size
    return RoundTerms(
        task.seed_block, seats, frozenset({task.requester.lower()}), task.reward // seats,
        task.slot_snapshot, task.posted_at,
    )  # fmt: skip


def pool_for(chain: Any, task: Any, round: int = 0) -> Pool | None:
    """The sortition pool of a task's committee (round 0) or re-execution committee (round 1);
    None while the seed block is not mined yet or once its hash is out of reach."""
    terms = round_terms(chain, task, round)
    if terms is None:
        return None
    seed, since = seed_state(chain, terms.seed_block)
    if seed is None:
        return None
    now = chain.block_timestamp("latest")
    return Pool(
        seed=seed,
        task_id=task.task_id,
        round=round,
        seats=terms.seats,
        capability=task.capability,
        offer=terms.offer,
        window=MAX_DRAW + 1,
        slot_count=terms.slot_count,
        excluded=terms.excluded,
        budget=skip_budget(terms.seats, now + 1 - terms.started),
        started=terms.started,
    )


def candidates_for(
    chain: Any, task: Any, round: int = 0, owners: Iterable[str] = ()
) -> Candidates | None:
    pool = pool_for(chain, task, round)
    return None if pool is None else Candidates(chain, pool, owners)


def lookup_draws(chain: Any, info: Any, round: int, members: list[str]) -> list[int]:
    """Each member's first draw within the current window (0 if never drawn, which the
    contract rejects): install as ``ChainClient.draw_lookup`` to let callers omit draws."""
    cands = candidates_for(chain, info, round)
    found = cands.draws_for(members) if cands is not None else {}
    return [found.get(m.lower(), 0) for m in members]
