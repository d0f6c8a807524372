"""Data owners' notices (their agents' decisions on a task), kept for the requester.

An owner agent sends its signed :class:`OwnerNotice` to the nodes it is connected to and
gossips it; a node keeps the newest notice per (task, owner), only for a task whose params it
knows and only from one of that task's owners (so memory stays bounded by the tasks it knows
times their owners), and answers queries ``{"task_id": N}`` on the same protocol. Notices are
in memory: the agent re-sends them while the task is open, so a restarted node learns them
again.
"""

from __future__ import annotations

import logging

from dnode.node.errors import ProtocolViolation
from dnode.node.protocol import OwnerNotice, error, loads, ok
from dnode.node.task.context import NodeContext

log = logging.getLogger("dnode.node")


def accept_notice(ctx: NodeContext, peer: str, n: OwnerNotice) -> bool:
    """Keep ``n`` if it is the newest from that owner; False if it is not newer."""
    if (n.chain_id, n.contract.lower()) != (ctx.chain_id, ctx.contract.lower()):
        raise ProtocolViolation(peer, "owner notice is for another chain or contract")
    rt = ctx.known(n.task_id)
    if rt is None or rt.params is None:
        raise ProtocolViolation(peer, f"params of task {n.task_id} unknown here")
    if not rt.params.is_owner(n.owner):
        raise ProtocolViolation(peer, f"{n.owner} is not a data owner of task {n.task_id}")
    per_task = ctx.owner_notices.setdefault(n.task_id, {})
    prev = per_task.get(n.owner.lower())
    if prev is not None and prev.seq >= n.seq:
        return False
    per_task[n.owner.lower()] = n
    log.info("task %d: owner %s is %s%s", n.task_id, n.owner, n.state,
             f" ({n.reason})" if n.reason else "")  # fmt: skip
    return True


async def on_owner_notice(ctx: NodeContext, peer: str, data: bytes) -> bytes:
    """A notice to keep (signed), or a query for a task's notices (``{"task_id": N}``)."""
    try:
        obj = loads(peer, data)
        if "signature" not in obj:
            task_id = obj.get("task_id")
            if not isinstance(task_id, int) or isinstance(task_id, bool):
                raise ProtocolViolation(peer, "task_id missing")
            kept = ctx.owner_notices.get(task_id, {})
            return ok(notices=[n.to_json() for n in kept.values()])
        accept_notice(ctx, peer, OwnerNotice.from_obj(peer, obj))
    except ProtocolViolation as e:
        log.info("%s", e)
        return error(e.detail)
    return ok()
