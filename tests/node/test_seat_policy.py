"""Seat policy as plain functions: which committee a node binds, what it does after a restart."""

from __future__ import annotations

from types import SimpleNamespace

from dnode.contracts.client import TaskStatus
from dnode.node.task.policy import Resume, choose_committee, resume_action
from dnode.scheduler.sortition import Candidate

A, B, C, D, E = (f"0x{i:040x}" for i in range(1, 6))
RANKED = [Candidate(a, j) for j, a in enumerate((A, B, C, D, E))]


def test_the_best_ranked_offers_form_the_committee() -> None:
    got = choose_committee(RANKED, {A, B, C, D}, 3, B, waited=0.0, backup_wait=8.0)
    assert [c.address for c in got.chosen] == [A, B, C]
    assert got.position == 1 and got.missing == [] and not got.wait


def test_a_silent_best_ranked_candidate_is_replaced_only_after_the_backup_wait() -> None:
    early = choose_committee(RANKED, {A, C, D}, 3, D, waited=2.0, backup_wait=8.0)
    assert [c.address for c in early.chosen] == [A, C, D] and early.missing == [B]
    assert early.wait  # B still has time to offer: a backup must not take its seat yet
    late = choose_committee(RANKED, {A, C, D}, 3, D, waited=9.0, backup_wait=8.0)
    assert not late.wait and late.position == 2


def test_no_committee_without_enough_offers_or_when_not_chosen() -> None:
    assert choose_committee(RANKED, {A, B}, 3, A, 99.0, 8.0).position is None
    out = choose_committee(RANKED, {A, B, C, D}, 3, D, 99.0, 8.0)
    assert out.position is None  # D is a backup and three better-ranked ones offered


def task(status: TaskStatus, committee: tuple[str, ...] = (A, B, C), declined: int = 0):
    return SimpleNamespace(
        status=status, committee=committee, declined_bitmap=declined, dispute=None
    )


def test_restart_decisions() -> None:
    def act(t: SimpleNamespace, seat: int = 1, me: str = B, **kw: bool) -> Resume:
        flags = {"signed": False, "computed": False, "can_rerun": False, **kw}
        return resume_action(t, 0, seat, me, **flags)

    assert act(task(TaskStatus.FINALIZED), signed=True) == Resume.CLOSE
    assert act(task(TaskStatus.COMPUTING), me=D, can_rerun=True) == Resume.CLOSE  # not its seat
    assert act(task(TaskStatus.COMPUTING, declined=0b10), can_rerun=True) == Resume.CLOSE
    assert act(task(TaskStatus.COMPUTING), can_rerun=True) == Resume.WORK
    assert act(task(TaskStatus.COMPUTING), signed=True) == Resume.WORK
    # inputs lost (e.g. HE blobs) and nothing computed: give the seat up, never re-sign
    assert act(task(TaskStatus.COMPUTING)) == Resume.ABANDON
    assert act(task(TaskStatus.REPORTED)) == Resume.SETTLE
    assert act(task(TaskStatus.DISPUTED)) == Resume.SETTLE
