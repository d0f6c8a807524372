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
    MPC_JOIN_MIN,
    MPC_MIN_ATTEMPT,
    MPC_SLOT,
    MPC_SLOT_GAP,
    attempt_end,
    current_slot,
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


def test_a_member_restarted_early_in_an_attempt_joins_it() -> None:
    # chaos run, task 3: the others began slot k at 18:42:00 and waited 25 s for party 0,
    # whose node was killed at :05 and back at :09; it sat the attempt out ("no time left"
    # for the next boundary) and the task was refunded. Joining slot k gives it 16 s.
    k = 59_871_685
    now = k * MPC_SLOT + 9.0
    assert current_slot(now, attempt_timeout=45.0, time_left=30.0) == k
    # the next boundary would not fit before the deadline: before, the member gave up
    assert slot_plan(now, time_left=30.0) is None


def test_no_join_when_the_attempt_is_nearly_over_or_runs_past_the_deadline() -> None:
    k = 59_871_685
    end = attempt_end(k * MPC_SLOT, 45.0)
    assert current_slot(end - MPC_JOIN_MIN + 0.5, 45.0, 1_000.0) is None
    assert current_slot(k * MPC_SLOT + 1.0, 45.0, end - k * MPC_SLOT - 2.0) is None


@given(
    k=st.integers(min_value=59_000_000, max_value=60_000_000),
    into=st.floats(min_value=0.0, max_value=MPC_SLOT - 0.001),
    timeout=st.floats(min_value=1.0, max_value=600.0),
)
def test_a_joiner_ends_with_the_others_and_retries_with_them(
    k: int, into: float, timeout: float
) -> None:
    # whenever a restarted member joins, its attempt is the others' attempt of boundary k (same
    # key s{k}, same end), and a failure leaves everyone at the same next boundary
    now = k * MPC_SLOT + into
    j = current_slot(now, timeout, 10_000.0)
    if j is None:
        return
    assert j == k
    end = attempt_end(j * MPC_SLOT, timeout)
    assert end - now >= MPC_JOIN_MIN
    assert slot_plan(end, 10_000.0) == k + 1
