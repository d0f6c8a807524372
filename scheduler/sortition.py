"""Stake-weighted, ranked committee sortition: the one implementation the node, the CLI, data
owners, the contract tests and ``scripts/simulate_scheduler.py`` share (the contract checks the
same arithmetic, see contracts/vyper/market.vy ``_bind_committee``).

Stake is cut into *slots*: a node bonding ``stake`` owns ``stake // slot_stake`` valid slots
(``slot_stake`` is the deployment's seat collateral). The registry keeps one append-only array
of slots; a slot records its owner and its rank ``k`` among that owner's slots, and it counts
only while ``k < stake // slot_stake`` (so unbonding and slashing need no loop: the owner's top
slots simply stop counting). Slots never move once appended.

Draw ``j`` of a task (round ``r``) lands on position ``keccak256(abi_encode(seed, task_id, r,
j)) mod snapshot``, ``snapshot`` being the slot count when the task was posted (or disputed):
slots appended later are never drawn, so stake added after the seed is known buys nothing.
Candidates in rank order are the distinct owners in order of first appearance over
``j = 0, 1, 2 ...`` that are eligible for the task. A committee is valid on-chain iff each
member claims its first draw and every owner drawn before the worst member is a member, stale,
excluded (requester, ...), ineligible on-chain, or one of at most ``skip_budget`` skipped
owners; a skipped owner may displace the worst member during the claim period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from eth_utils import keccak

SKIP_DELAY = 10  # seconds after posting during which a formation may skip nobody ...
SKIP_STEP = 10  # ... then one more skip every 10 s, at most m
SKIP_BLOCKS = 128  # a formation that skips must land within 128 blocks of the seed block
MAX_DRAW = (1 << 14) - 1  # deepest draw a seat may claim (packed 14 bits per seat)
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


def draw_position(seed: bytes, task_id: int, round: int, j: int, slot_count: int) -> int | None:
    """The slot draw ``j`` lands on (``slot_count``: the task's snapshot); None if empty."""
    if slot_count <= 0:
        return None
    return draw_hash(seed, task_id, round, j) % slot_count


def skip_budget(m: int, elapsed: int) -> int:
    """How many eligible candidates ranked above a member a formation may leave out,
    ``elapsed`` seconds after posting (or the dispute): 0 during SKIP_DELAY, then one more
    every SKIP_STEP seconds, at most m."""
    if elapsed < SKIP_DELAY:
        return 0
    return min(1 + (elapsed - SKIP_DELAY) // SKIP_STEP, m)


def valid_slots(stake: int, slot_stake: int) -> int:
    """Number of a node's slots that count: one per ``slot_stake`` of bonded stake."""
    return stake // slot_stake if slot_stake > 0 else 0


def draws(
    seed: bytes, task_id: int, round: int, slot_count: int, holder: Holder, limit: int
) -> Iterator[tuple[int, str]]:
    """(j, owner) of every draw j < limit that hits a valid slot, in order."""
    if slot_count <= 0:
        return
    prefix = seed + task_id.to_bytes(32, "big") + round.to_bytes(32, "big")
    for j in range(limit):
        pos = int.from_bytes(keccak(prefix + j.to_bytes(32, "big")), "big") % slot_count
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


@dataclass
class RankCheck:
    """The on-chain ranking rule applied to a committee: which owners it skipped."""

    ok: bool
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (draw, owner)
    reason: str = ""

    @property
    def skips(self) -> int:
        return len(self.skipped)


def check_committee(
    seed: bytes,
    task_id: int,
    round: int,
    slot_count: int,
    holder: Holder,
    eligible: Verdict,
    members: list[str],
    claimed: list[int],
    excluded: Iterable[str] = (),
    budget: int | None = None,
) -> RankCheck:
    """What ``_bind_committee`` verifies, from chain data: each member holds its claimed draw
    and it is its first; the owners drawn before the worst member that are neither members,
    excluded nor ineligible (``eligible`` returns a reason) are the skipped ones, at most
    ``budget`` of them (None: no bound). Data owners and nodes call this before trusting a
    committee."""
    keys = [m.lower() for m in members]
    if len(claimed) != len(keys):
        return RankCheck(False, reason="one draw per member")
    out = RankCheck(True)
    for key, d in zip(keys, claimed, strict=True):
        pos = draw_position(seed, task_id, round, d, slot_count)
        owner = holder(pos) if pos is not None else None
        if owner is None or owner.lower() != key:
            return RankCheck(False, reason=f"{key} does not hold draw {d}")
    ex = {e.lower() for e in excluded}
    seen: set[str] = set()
    last = max(claimed, default=0)
    for j, owner in draws(seed, task_id, round, slot_count, holder, last):
        key = owner.lower()
        if key in keys:
            if claimed[keys.index(key)] > j:
                return RankCheck(False, reason=f"{key} was drawn at {j}, before its claimed draw")
            continue
        if key in ex or key in seen:
            continue
        seen.add(key)
        if eligible(owner) is not None:
            continue
        out.skipped.append((j, owner))
    if budget is not None and out.skips > budget:
        out.ok = False
        out.reason = f"{out.skips} eligible candidates skipped, budget {budget}"
    return out


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
