"""The MPC retry schedule: members agree on when each attempt starts and ends.

Regression: slots used to be counted back from the report deadline in *chain* time; the
embedded devnet's clock runs ahead of the wall clock under load (one block per transaction,
each at least a second after its parent), so members reading different latest blocks chose
different slots and their parties never met (chaos runs: "next attempt in 48 s (slot 1)" on one
member, "in 3 s (slot 1)" on another, 14 s apart)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dnode.node.engines.mpc.engine import (
    MPC_MIN_ATTEMPT,
    MPC_SLOT,
    MPC_SLOT_GAP,
    attempt_end,
    slot_plan,
)

T0 = 1_790_000_000.0  # a wall-clock time (late 2026)


def test_members_reading_different_chain_times_pick_the_same_slot() -> None:
    # same wall clock, chain clocks 20 s apart: only the time left differs, not the slot
    now = T0 + 7.3
    a = slot_plan(now, time_left=200.0)
    b = slot_plan(now + 0.8, time_left=180.0)
    assert a is not None and a == b


@given(
    start=st.floats(min_value=T0, max_value=T0 + 10_000),
    timeout=st.floats(min_value=1.0, max_value=600.0),
)
def test_an_attempt_ends_before_a_boundary_and_lasts_long_enough(
    start: float, timeout: float
) -> None:
    end = attempt_end(start, timeout)
    assert end - start >= MPC_MIN_ATTEMPT - 1e-6
    assert end - start <= max(timeout, MPC_MIN_ATTEMPT) + MPC_SLOT + 1e-6
    boundary = end + MPC_SLOT_GAP
    assert abs(boundary / MPC_SLOT - round(boundary / MPC_SLOT)) < 1e-9


@given(
    k=st.integers(min_value=59_000_000, max_value=60_000_000),
    late=st.floats(min_value=0.0, max_value=MPC_SLOT_GAP - 0.5),
    timeout=st.floats(min_value=1.0, max_value=600.0),
)
def test_after_a_failed_retry_every_member_picks_the_next_common_boundary(
    k: int, late: float, timeout: float
) -> None:
    # an attempt begun at boundary k ends (on every member: it is timed from the boundary)
    # MPC_SLOT_GAP before a later boundary; a member noticing the failure a little late still
    # picks that boundary
    end = attempt_end(k * MPC_SLOT, timeout)
    nxt = slot_plan(end + late, 10_000.0)
    assert nxt is not None and nxt * MPC_SLOT == end + MPC_SLOT_GAP


def test_no_slot_when_an_attempt_would_not_fit_before_the_deadline() -> None:
    now = 100 * MPC_SLOT + 1.0
    assert slot_plan(now, time_left=MPC_SLOT - 1.0 + MPC_MIN_ATTEMPT + 0.5) is not None
    assert slot_plan(now, time_left=MPC_SLOT - 1.0 + MPC_MIN_ATTEMPT - 0.5) is None
