"""The sortition arithmetic the node, CLI, simulation and contract share."""

from __future__ import annotations

import random

from eth_abi import encode
from eth_utils import keccak

from dnode.scheduler.sortition import (
    SKIP_DELAY,
    SKIP_STEP,
    SlotTable,
    check_committee,
    draw_hash,
    draw_position,
    first_draws,
    rank,
    skip_budget,
    valid_slots,
)

SEED = bytes.fromhex("11" * 32)


def test_draw_hash_is_abi_encoded_keccak() -> None:
    # the contract computes keccak256(abi_encode(seed, task_id, round, j))
    for task_id, rnd, j in [(1, 0, 0), (7, 1, 5), (2**64, 0, 12345)]:
        want = int.from_bytes(
            keccak(encode(["bytes32", "uint256", "uint256", "uint256"], [SEED, task_id, rnd, j])),
            "big",
        )
        assert draw_hash(SEED, task_id, rnd, j) == want


def test_fixed_vector() -> None:
    # pinned so a change to the encoding is caught (the contract test uses the same function)
    assert draw_hash(SEED, 1, 0, 0) == int.from_bytes(
        keccak(SEED + (1).to_bytes(32, "big") + bytes(64)), "big"
    )
    assert draw_position(SEED, 1, 0, 0, 1) == 0  # one slot: every draw hits it
    assert draw_position(SEED, 1, 0, 0, 0) is None  # empty registry: every draw misses


def test_draws_are_taken_modulo_the_snapshot() -> None:
    # no power-of-two window: every draw lands on a slot of the snapshot, and the slot count
    # at posting fixes the draws whatever is appended later (the caller passes the snapshot)
    for j in range(200):
        pos = draw_position(SEED, 3, 0, j, 600)
        assert pos is not None and pos == draw_hash(SEED, 3, 0, j) % 600


def test_skip_budget_is_zero_at_first_then_grows_to_m() -> None:
    assert skip_budget(3, 0) == 0
    assert skip_budget(3, SKIP_DELAY - 1) == 0
    assert skip_budget(3, SKIP_DELAY) == 1
    assert skip_budget(3, SKIP_DELAY + SKIP_STEP) == 2
    assert skip_budget(3, SKIP_DELAY + 10 * SKIP_STEP) == 3
    assert skip_budget(7, 10**9) == 7


def test_check_committee_counts_skips_like_the_contract() -> None:
    t = SlotTable(slot_stake=1)
    for i in range(12):
        t.set_stake(f"n{i}", 2)
    r = rank(SEED, 4, 0, t.slot_count, t.holder, lambda a: None, 400)
    top = r.candidates

    def check(cs, eligible=lambda a: None, budget=None, excluded=()):
        return check_committee(
            SEED, 4, 0, t.slot_count, t.holder, eligible,
            [c.address for c in cs], [c.draw for c in cs], excluded, budget,
        )  # fmt: skip

    ok = check(top[:3], budget=0)
    assert ok.ok and ok.skips == 0
    worse = [top[0], top[1], top[4]]
    chk = check(worse)
    assert chk.ok and [o for _, o in chk.skipped] == [top[2].address, top[3].address]
    assert not check(worse, budget=1).ok
    # an ineligible or excluded owner is not a skip
    chk = check(worse, lambda a: "no" if a == top[2].address else None, excluded=[top[3].address])
    assert chk.ok and chk.skips == 0


def test_slots_count_one_per_slot_stake_and_stale_ones_miss() -> None:
    t = SlotTable(slot_stake=10)
    t.set_stake("a", 35)  # 3 slots
    t.set_stake("b", 20)  # 2 slots
    assert t.slot_count == 5 and [t.holder(i) for i in range(5)] == ["a", "a", "a", "b", "b"]
    t.set_stake("a", 12)  # unbonded: slots k = 1, 2 of a stop counting, nothing moves
    assert [t.holder(i) for i in range(5)] == ["a", None, None, "b", "b"]
    t.set_stake("a", 40)  # re-staked: the old slots count again, one more is appended
    assert t.slot_count == 6 and t.holder(5) == "a" and t.holder(2) == "a"
    assert valid_slots(40, 10) == 4
    assert t.set_stake("c", 10_000, max_append=64) == 64  # bounded per call, like stake()


def test_rank_is_distinct_first_appearance_and_skips_ineligible() -> None:
    t = SlotTable(slot_stake=1)
    for i in range(20):
        t.set_stake(f"n{i}", 1 + i % 3)
    all_draws = [
        (j, t.holder(p))
        for j in range(400)
        if (p := draw_position(SEED, 9, 0, j, t.slot_count)) is not None
    ]
    expected: list[tuple[str, int]] = []
    for j, owner in all_draws:
        if owner is not None and owner != "n3" and owner not in [a for a, _ in expected]:
            expected.append((owner, j))
    r = rank(SEED, 9, 0, t.slot_count, t.holder, lambda a: "no" if a == "n3" else None, 400)
    assert [(c.address, c.draw) for c in r.candidates] == expected
    if any(o == "n3" for _, o in all_draws):
        assert r.rejected == {"n3": "no"}
    short = rank(SEED, 9, 0, t.slot_count, t.holder, lambda a: None, 400, want=3)
    assert len(short.candidates) == 3
    found = first_draws(SEED, 9, 0, t.slot_count, t.holder, [a for a, _ in expected[:4]], 400)
    assert found == {a.lower(): j for a, j in expected[:4]}


def test_seat_frequency_follows_stake() -> None:
    # a small, fast version of scripts/simulate_scheduler.py: 3 stakes 1:2:5, 1 seat
    t = SlotTable(slot_stake=1)
    for a, s in (("a", 10), ("b", 20), ("c", 50)):
        t.set_stake(a, s)
    rng = random.Random(5)
    counts = dict.fromkeys("abc", 0)
    n = 8000
    for task_id in range(n):
        r = rank(rng.randbytes(32), task_id, 0, t.slot_count, t.holder, lambda a: None, 64, 1)
        counts[r.candidates[0].address] += 1
    for a, share in (("a", 1 / 8), ("b", 2 / 8), ("c", 5 / 8)):
        sigma = (share * (1 - share) / n) ** 0.5
        assert abs(counts[a] / n - share) < 5 * sigma, counts


def test_constants_match_the_contract() -> None:
    from pathlib import Path

    from dnode.scheduler import sortition

    src = (Path(__file__).parents[2] / "contracts" / "vyper" / "market.vy").read_text()
    for name in ("SKIP_DELAY", "SKIP_STEP", "SKIP_BLOCKS", "SEED_LIFETIME"):
        assert f"{name}: constant(uint256) = {getattr(sortition, name)}" in src, name
    assert "MAX_DRAW: constant(uint256) = (1 << DRAW_BITS) - 1" in src
    assert "DRAW_BITS: constant(uint256) = 14" in src and sortition.MAX_DRAW == (1 << 14) - 1
