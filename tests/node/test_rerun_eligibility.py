"""Who may offer a re-execution seat (round 1) of a disputed task."""

from __future__ import annotations

from types import SimpleNamespace

from dnode.contracts.client import TaskStatus
from dnode.node.task.policy import rerun_ineligible

A, B, C, REQ, DISP, OTHER = (f"0x{i:040x}" for i in range(1, 7))


def task(status: TaskStatus = TaskStatus.DISPUTED) -> SimpleNamespace:
    return SimpleNamespace(
        status=status,
        committee=(A, B, C),
        requester=REQ,
        dispute=SimpleNamespace(disputer=DISP),
    )


def check(t: SimpleNamespace, address: str) -> str | None:
    return rerun_ineligible(t, address)


def test_rerun_eligibility() -> None:
    assert check(task(), OTHER) is None
    assert check(task(), OTHER.upper().replace("0X", "0x")) is None
    assert check(task(), B) == "in the original committee"
    assert check(task(), REQ) == "the requester"
    assert check(task(), DISP) == "the disputer"
    assert check(task(TaskStatus.RECOMPUTING), OTHER) == "task is recomputing"
