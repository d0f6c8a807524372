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
