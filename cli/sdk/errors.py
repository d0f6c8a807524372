"""The SDK's errors: one root, one line each (the CLI prints ``str(err)``)."""

from __future__ import annotations


class SdkError(Exception):
    """A mistake the SDK (and so the ``dnode`` command) reports in one line.

    Errors of the layers below keep their own roots (``ContractsError``, ``SchedulerError``,
    ``OracleError``, ``NodeError``); :data:`dnode.cli.sdk.ERRORS` lists all five.

    >>> str(SdkError("task 9 does not exist"))
    'task 9 does not exist'
    """


class WaitTimeout(SdkError):
    """A wait gave up before the task reached the wanted status."""

    def __init__(self, task_id: int, timeout: float, what: str, status: str) -> None:
        self.task_id, self.timeout, self.status = task_id, timeout, status
        super().__init__(
            f"task {task_id}: gave up after {timeout:.0f} s waiting ({what}); status is {status}"
        )


def _errors() -> tuple[type[Exception], ...]:
    from dnode.contracts.errors import ContractsError
    from dnode.node.errors import NodeError
    from dnode.oracle.errors import OracleError
    from dnode.scheduler.errors import SchedulerError

    return (SdkError, ContractsError, SchedulerError, OracleError, NodeError)
