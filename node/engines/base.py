"""The engine seam: how a task's compute step runs, whatever the capability (MPC, HE).

The task steps never branch on the capability: they ask ``engine_for(spec)`` and call
``prepare`` (check the task's arguments before a seat is offered, raising a ``NodeError`` to
refuse), ``compute`` (wait for the inputs and evaluate; returns the engine's raw output) and
``encode_result`` (the bytes the committee signs and reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dnode.scheduler.programs import Program, TaskParams


class Engine(Protocol):
    def prepare(self, spec: Program, params: TaskParams, task_dir: Path) -> Any:
        """What ``compute`` needs from the task's params, checked; NodeError to refuse."""
        ...

    async def compute(self, prepared: Any, session: Any) -> Any:
        """Wait for the inputs and evaluate (``session``: a ``node.task.context.Session``)."""
        ...

    def encode_result(self, spec: Program, raw: Any) -> bytes:
        """The result bytes the committee signs and reports on-chain."""
        ...


@runtime_checkable
class Recorded(Protocol):
    """A raw output that says what ``result.json`` keeps beside the result bytes."""

    def record(self) -> dict[str, Any]: ...


def result_record(result: bytes, raw: Any) -> dict[str, Any]:
    extra = raw.record() if isinstance(raw, Recorded) else {"value": str(raw)}
    return {"result": "0x" + result.hex(), **extra}
