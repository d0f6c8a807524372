"""Seat policy as plain functions (no processes, no chain): who may re-execute a disputed task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.client import TaskStatus


def rerun_ineligible(task: Any, address: str) -> str | None:
    if task.status != TaskStatus.DISPUTED:
        return f"task is {task.status.name.lower()}"
    a = address.lower()
    if a in (c.lower() for c in task.committee):
        return "in the original committee"
    if a == task.requester.lower():
        return "the requester"
    if task.dispute is not None and a == task.dispute.disputer.lower():
        return "the disputer"
    return None


@dataclass(frozen=True)
class OpenView:
    """A disputed task as ``should_claim`` sees a seat on its re-execution committee."""

    capability: int
    committee_size: int
    status: TaskStatus = TaskStatus.OPEN
    seats_taken: int = 0
