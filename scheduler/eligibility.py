"""Whether a node should try to take a seat in a task: the off-chain half of committee rules.

The contract enforces registration, capability, collateral and the declared price and capacity
(and the sortition decides who is a candidate: scheduler/candidates.py); checking here first
saves work, and ``max_tasks`` (how many tasks this process runs at once) is the node's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dnode.scheduler.programs import TaskParams
from dnode.scheduler.seat_terms import seat_terms


@dataclass(frozen=True)
class NodeView:
    address: str
    peer_id: str
    registered_peer_id: str
    capabilities: int
    free_stake: int
    seat_collateral: int
    running: int
    max_tasks: int


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str = ""


def should_claim(node: NodeView, task: Any, params: TaskParams | None) -> Decision:
    """``task`` is the on-chain TaskInfo; ``params`` were already checked against its digest
    (None: not announced yet, e.g. a seat claimed back before the requester announces them;
    the data-owner rule is then checked once they arrive)."""
    from dnode.contracts.client import TaskStatus

    if task.status != TaskStatus.OPEN:
        return Decision(False, f"task is {task.status.name.lower()}")
    if task.seats_taken >= task.committee_size:
        return Decision(False, "committee is full")
    if node.registered_peer_id != node.peer_id:
        return Decision(False, "node is not registered with this peer id")
    if node.capabilities & task.capability != task.capability:
        return Decision(False, "node lacks the task's capability")
    if node.free_stake < node.seat_collateral:
        return Decision(False, "not enough free stake for the seat collateral")
    if node.running >= node.max_tasks:
        return Decision(False, f"already running {node.running} tasks (max {node.max_tasks})")
    if params is not None and params.is_owner(node.address):
        return Decision(False, "a data owner of a task never sits on its committee")
    reward = getattr(task, "reward", None)  # a re-execution seat (_OpenView) has no reward
    if reward is not None:
        terms = seat_terms(
            reward // max(task.committee_size, 1),
            node.seat_collateral,
            int(getattr(task, "compute_window", 0)),
        )
        if not terms.ok:
            return Decision(False, terms.reason)
    return Decision(True)
