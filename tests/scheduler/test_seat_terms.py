"""A node's own seat policy: params looked for during the whole seat window, the claim period
waited out before reporting, seats declined when their terms are not worth it."""

from __future__ import annotations

from types import SimpleNamespace

from dnode.scheduler.seat_terms import PARAMS_WAIT_FLOOR, claims_wait, params_wait, seat_terms


def test_params_are_looked_for_during_the_whole_seat_window() -> None:
    # was: 30 s, after which a requester withholding params had muted honest candidates
    assert params_wait(seat_deadline=1_000 + 600, now=1_000) == 600
    assert params_wait(seat_deadline=1_000 + 5, now=1_000) == PARAMS_WAIT_FLOOR


def test_claims_wait_until_the_claim_period_ends() -> None:
    assert claims_wait(SimpleNamespace(claims_until=0), now=50) == 0
    assert claims_wait(SimpleNamespace(claims_until=80), now=50) == 30
    assert claims_wait(SimpleNamespace(claims_until=80), now=90) == 0


def test_seats_whose_terms_are_not_worth_it_are_declined() -> None:
    assert seat_terms(10**17, 10**17, 600).ok
    short = seat_terms(10**17, 10**17, 60, program_seconds=120)
    assert not short.ok and "shorter than the program needs" in short.reason
    cheap = seat_terms(10**15, 10**17, 600, min_reward_to_risk=0.05)
    assert not cheap.ok and "below 0.05 x" in cheap.reason


def test_should_claim_takes_rerun_views_without_a_reward() -> None:
    """A re-execution seat is judged on a view without `reward` (regression: the terms check
    raised AttributeError and nodes never joined re-execution committees)."""
    from dnode.node.task.policy import OpenView as _OpenView
    from dnode.scheduler.eligibility import NodeView, should_claim

    node = NodeView("0xabc", "p", "p", 1, 10**18, 10**17, 0, 4)
    params = SimpleNamespace(is_owner=lambda a: False)
    assert should_claim(node, _OpenView(1, 5), params).ok  # type: ignore[arg-type]
