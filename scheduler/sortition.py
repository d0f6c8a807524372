"""Stake-weighted committee sortition: the one implementation the node, the CLI, the contract
tests and ``scripts/simulate_scheduler.py`` share (the contract checks the same arithmetic).

Stake is cut into *slots*: a node bonding ``stake`` owns ``stake // slot_stake`` valid slots
(``slot_stake`` is the deployment's seat collateral). The registry keeps one append-only array
of slots; a slot records its owner and its rank ``k`` among that owner's slots, and it counts
only while ``k < stake // slot_stake`` (so unbonding and slashing need no loop: the owner's top
slots simply stop counting). Slots never move once appended.

Draw ``j`` of a task (round ``r``) lands on position ``keccak256(abi_encode(seed, task_id, r,
j)) mod span``, ``span`` being the smallest power of two >= the number of slots. A draw on a
position past the end or on a stale slot is a miss. Candidates in rank order are the distinct
owners in order of first appearance over ``j = 0, 1, 2 ...`` that are eligible for the task.
A member's seat is valid on-chain iff its claimed draw ``j`` lands on one of its valid slots and
``j < window(m, blocks since the seed block)``: constant work per seat, no registry loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from eth_utils import keccak

W0_EXTRA = 4  # window at the seed block: 2 m + 4 draws
ESCALATE_BLOCKS = 4  # the window doubles every 4 blocks past the seed block ...
MAX_DOUBLINGS = 16  # ... up to 2**16 times
SEED_LIFETIME = 256  # blockhash reaches back 256 blocks: a seed older than that is gone
ZERO_ADDRESS = "0x" + "00" * 20

Holder = Callable[[int], str | None]  # slot position -> owner address, None: miss
Verdict = Callable[[str], str | None]  # address -> None if eligible, else why not


def draw_hash(seed: bytes, task_id: int, round: int, j: int) -> int:
    """keccak256(abi_encode(bytes32 seed, uint256 task_id, uint256 round, uint256 j))."""
    return int.from_bytes(
        keccak(
            seed + task_id.to_bytes(32, "big") + round.to_bytes(32, "big") + j.to_bytes(32, "big")
        ),
        "big",
    )


def span(slot_count: int) -> int:
    """Smallest power of two >= slot_count (1 for an empty registry). Draws are taken modulo
    the span, not the count, so appending slots after the seed is known re-maps no draw that
    landed on an existing slot (only crossing a power of two does, which costs doubling the
    registered stake)."""
    return 1 << max(slot_count - 1, 0).bit_length()


def draw_position(seed: bytes, task_id: int, round: int, j: int, slot_count: int) -> int | None:
    """The slot draw ``j`` lands on, or None when it falls past the last slot."""
    pos = draw_hash(seed, task_id, round, j) & (span(slot_count) - 1)
    return pos if pos < slot_count else None


def window(m: int, blocks_since_seed: int) -> int:
    """How many draws may be claimed ``blocks_since_seed`` blocks after the seed block: the
    first 2 m + 4 at once, doubling every ESCALATE_BLOCKS so a seat whose candidates do not
    show up is eventually reachable by later ones (backups) without any on-chain loop."""
    steps = min(max(blocks_since_seed, 0) // ESCALATE_BLOCKS, MAX_DOUBLINGS)
    return (2 * m + W0_EXTRA) << steps


def valid_slots(stake: int, slot_stake: int) -> int:
    """Number of a node's slots that count: one per ``slot_stake`` of bonded stake."""
    return stake // slot_stake if slot_stake > 0 else 0


def draws(
    seed: bytes, task_id: int, round: int, slot_count: int, holder: Holder, limit: int
) -> Iterator[tuple[int, str]]:
    """(j, owner) of every draw j < limit that hits a valid slot, in order."""
    mask = span(slot_count) - 1
    prefix = seed + task_id.to_bytes(32, "big") + round.to_bytes(32, "big")
    for j in range(limit):
        pos = int.from_bytes(keccak(prefix + j.to_bytes(32, "big")), "big") & mask
        if pos >= slot_count:
            continue
        owner = holder(pos)
        if owner is not None:
            yield j, owner


@dataclass(frozen=True)
class Candidate:
    address: str
    draw: int  # the draw index j to claim on-chain


@dataclass
class Ranking:
    """Eligible candidates in rank order, and why each ineligible owner drawn was skipped."""

    candidates: list[Candidate] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # address (lower) -> reason
    scanned: int = 0  # draws examined

    def addresses(self) -> list[str]:
        return [c.address for c in self.candidates]

    def index(self, address: str) -> int | None:
        a = address.lower()
        for i, c in enumerate(self.candidates):
            if c.address.lower() == a:
                return i
        return None


def rank(
    seed: bytes,
    task_id: int,
    round: int,
    slot_count: int,
    holder: Holder,
    verdict: Verdict,
    limit: int,
    want: int | None = None,
) -> Ranking:
    """Distinct eligible owners in order of first appearance over draws j < limit; stops
    early once ``want`` candidates are found (O(want) draws for a healthy registry)."""
    out = Ranking()
    seen: set[str] = set()
    for j, owner in draws(seed, task_id, round, slot_count, holder, limit):
        out.scanned = j + 1
        key = owner.lower()
        if key in seen:
            continue
        seen.add(key)
        why = verdict(owner)
        if why is None:
            out.candidates.append(Candidate(owner, j))
            if want is not None and len(out.candidates) >= want:
                return out
        else:
            out.rejected[key] = why
    out.scanned = limit
    return out


def first_draws(
    seed: bytes,
    task_id: int,
    round: int,
    slot_count: int,
    holder: Holder,
    members: list[str],
    limit: int,
) -> dict[str, int]:
    """For each member, the first draw j < limit that lands on one of its valid slots (members
    never drawn are absent). Used to build the ``draws`` argument of form_committee."""
    wanted = {m.lower() for m in members}
    found: dict[str, int] = {}
    for j, owner in draws(seed, task_id, round, slot_count, holder, limit):
        key = owner.lower()
        if key in wanted and key not in found:
            found[key] = j
            if len(found) == len(wanted):
                break
    return found


class SlotTable:
    """In-memory slot registry with the contract's semantics (append-only, lazy validity):
    used by the simulation and as the reference model in the contract tests."""

    def __init__(self, slot_stake: int) -> None:
        self.slot_stake = slot_stake
        self.owner: list[str] = []
        self.rank_of: list[int] = []  # k: rank of the slot among its owner's slots
        self.owned: dict[str, int] = {}
        self.stake: dict[str, int] = {}

    def set_stake(self, address: str, stake: int, max_append: int | None = None) -> int:
        """Set a node's bonded stake and append the slots it is now owed (at most
        ``max_append``); returns how many were appended."""
        self.stake[address] = stake
        owed = valid_slots(stake, self.slot_stake) - self.owned.get(address, 0)
        n = max(0, owed if max_append is None else min(owed, max_append))
        have = self.owned.get(address, 0)
        for k in range(have, have + n):
            self.owner.append(address)
            self.rank_of.append(k)
        self.owned[address] = have + n
        return n

    @property
    def slot_count(self) -> int:
        return len(self.owner)

    def holder(self, pos: int) -> str | None:
        if pos >= len(self.owner):
            return None
        a = self.owner[pos]
        return a if self.rank_of[pos] < valid_slots(self.stake.get(a, 0), self.slot_stake) else None
