"""Errors raised by the oracle package (attestations, result encoding, reading)."""

from __future__ import annotations


class OracleError(Exception):
    """Root of every error the oracle package raises; the CLI prints ``str(err)``."""


class BadSignature(OracleError):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"bad attestation signature: {detail}")


class ResultMismatch(OracleError):
    def __init__(self, task_id: int, expected: str, actual: str) -> None:
        self.task_id, self.expected, self.actual = task_id, expected, actual
        super().__init__(
            f"task {task_id}: result digest {actual} does not match on-chain {expected}"
        )


class ResultNotAvailable(OracleError):
    def __init__(self, task_id: int, status: str) -> None:
        self.task_id, self.status = task_id, status
        super().__init__(f"task {task_id} has no attested result (status: {status})")


class UnknownTask(OracleError):
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} does not exist on-chain")
