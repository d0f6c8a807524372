"""How many slots a node reads to rank a task's candidates: the draws it walks, in batches,
not every slot of the registry (1,000 slots = 1,000 eth_calls per task on the devnet)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dnode.scheduler.candidates import MAX_SCAN, Candidates, Pool

NODES = [f"0x{i:040x}" for i in range(1, 6)]


class SlotChain:
    """The registry's slots and node terms; counts what is read and how."""

    def __init__(self, holders: list[str | None], batches: bool = True) -> None:
        self.holders = holders
        self.deployment = SimpleNamespace(params={"seat_collateral": 1})
        self.single: list[int] = []
        self.batched: list[list[int]] = []
        if not batches:
            self.slot_holders = None  # type: ignore[assignment]

    def slot_holder(self, pos: int) -> str | None:
        self.single.append(pos)
        return self.holders[pos]

    def slot_holders(self, positions: list[int]) -> dict[int, str | None]:
        self.batched.append(list(positions))
        return {p: self.holders[p] for p in positions}


def pool(slots: int, task: int = 7) -> Pool:
    return Pool(b"\x11" * 32, task, 0, 3, 1, 0, 1 << 14, slots, frozenset())


def everyone_eligible(c: Candidates) -> Any:
    c.verdict = lambda address: None  # type: ignore[method-assign]
    return c


def test_a_ranking_reads_the_draws_it_walks_not_every_slot() -> None:
    holders: list[str | None] = [NODES[i % 5] for i in range(1000)]  # 5 nodes x 200 slots
    chain = SlotChain(holders)
    ranking = everyone_eligible(Candidates(chain, pool(1000))).ranking(want=3)
    assert len(ranking.candidates) == 3
    read = sum(len(b) for b in chain.batched) + len(chain.single)
    assert read <= 16 and len(chain.batched) == 1, (chain.batched, chain.single)


@settings(max_examples=40, deadline=None)
@given(
    slots=st.integers(min_value=1, max_value=3000),
    holes=st.integers(min_value=0, max_value=99),
    task=st.integers(min_value=1, max_value=10**6),
    want=st.integers(min_value=1, max_value=5),
)
def test_batched_reads_rank_exactly_as_one_by_one(
    slots: int, holes: int, task: int, want: int
) -> None:
    # empty slots (unbonded stake) make the walk go deep: batches grow, results stay the same
    holders = [None if (i * 7919) % 100 < holes else NODES[i % 5] for i in range(slots)]
    batched = everyone_eligible(Candidates(SlotChain(holders), pool(slots, task)))
    single = everyone_eligible(Candidates(SlotChain(holders, batches=False), pool(slots, task)))
    a, b = batched.ranking(want=want), single.ranking(want=want)
    assert a.candidates == b.candidates and a.scanned == b.scanned
    members = [c.address for c in a.candidates]
    assert batched.draws_for(members) == single.draws_for(members)
    assert b.scanned <= MAX_SCAN
