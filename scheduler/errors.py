"""Errors raised by the scheduler package."""

from __future__ import annotations


class SchedulerError(Exception):
    """Root of every error the scheduler package raises."""


class UnknownProgram(SchedulerError):
    def __init__(self, program: str, known: list[str]) -> None:
        self.program, self.known = program, known
        super().__init__(f"unknown program {program!r} (known: {', '.join(known)})")


class InvalidTaskParams(SchedulerError):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"invalid task parameters: {detail}")


class CommitteeNotRanked(SchedulerError):
    """A committee that does not follow the ranked sortition as recomputed from chain data:
    a data owner refuses to send it shares."""

    def __init__(self, task_id: int, round: int, detail: str) -> None:
        self.task_id, self.round, self.detail = task_id, round, detail
        what = "re-execution committee" if round else "committee"
        super().__init__(f"task {task_id}: the {what} is not the best-ranked one: {detail}")


class SeatClaimsOpen(SchedulerError):
    """Skipped candidates may still take their seats: shares sent now could reach a member
    about to be displaced."""

    def __init__(self, task_id: int, until: int) -> None:
        self.task_id, self.until = task_id, until
        super().__init__(f"task {task_id}: seat claims are open until {until} (chain time)")
