"""Errors of the owner agent (under the node package's root, NodeError)."""

from __future__ import annotations

from dnode.node.errors import NodeError


class OwnerAgentError(NodeError):
    """Root of the owner agent's errors."""


class OwnerConfigError(OwnerAgentError):
    """The agent's TOML config is unreadable or breaks a rule (unknown key, wrong type...)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"owner config {path}: {detail}")


class UnknownTask(OwnerAgentError):
    """The agent has recorded no decision for this task."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"the owner agent has no decision for task {task_id}")


class NotPending(OwnerAgentError):
    """Only a pending task can be approved or rejected."""

    def __init__(self, task_id: int, decision: str) -> None:
        self.task_id, self.decision = task_id, decision
        super().__init__(f"task {task_id} is not pending (it is {decision})")
