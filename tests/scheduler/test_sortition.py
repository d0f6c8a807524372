"""The sortition arithmetic the node, CLI, simulation and contract share."""

from __future__ import annotations

import random

from eth_abi import encode
from eth_utils import keccak

from dnode.scheduler.sortition import (
    ESCALATE_BLOCKS,
    SlotTable,
    draw_hash,
    draw_position,
    first_draws,
    rank,
    span,
    valid_slots,
    window,
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


def test_span_is_next_power_of_two() -> None:
    assert [span(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 1000)] == [1, 1, 2, 4, 4, 8, 8, 16, 1024]


def test_positions_below_the_count_do_not_move_when_slots_are_appended() -> None:
    # appending slots within the same power of two never re-maps a draw that hit a slot
    for j in range(200):
        before = draw_position(SEED, 3, 0, j, 600)
        after = draw_position(SEED, 3, 0, j, 1000)
        if before is not None:
            assert after == before


def test_window_grows_by_doubling_and_is_capped() -> None:
    assert window(3, 0) == 10
    assert window(3, ESCALATE_BLOCKS - 1) == 10
    assert window(3, ESCALATE_BLOCKS) == 20
    assert window(3, 3 * ESCALATE_BLOCKS) == 80
    assert window(3, 10**9) == 10 << 16


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
    for name in ("W0_EXTRA", "ESCALATE_BLOCKS", "MAX_DOUBLINGS", "SEED_LIFETIME"):
        assert f"{name}: constant(uint256) = {getattr(sortition, name)}" in src, name
