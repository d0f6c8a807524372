"""Step 3, inputs: data owners' shares for this node's seat (stored before the owner hears ok)."""

from __future__ import annotations

import json
import logging
from functools import partial

import trio

from dnode.node.errors import ProtocolViolation
from dnode.node.mpc.influence import table_rows, task_witness
from dnode.node.mpc.sharing import task_modulus
from dnode.node.protocol import (
    Contribution,
    error,
    ok,
)
from dnode.node.task.context import NodeContext
from dnode.node.task.state import TaskRuntime

log = logging.getLogger("dnode.node")

SEAT_WAIT = 5.0  # seconds a contribution waits for this node to see its task's committee


def _seated_with_params(rt: TaskRuntime) -> bool:
    """This node knows the task's committee (or already holds its seat) and its params."""
    return (rt.seat is not None or rt.is_formed()) and rt.knows_params()


async def on_contribution(ctx: NodeContext, peer: str, data: bytes) -> bytes:
    try:
        c = Contribution.parse(peer, data)
        rt = ctx.known(c.task_id, c.round)
        if (c.chain_id, c.contract.lower()) != (ctx.chain_id, ctx.contract.lower()):
            raise ProtocolViolation(peer, "contribution is for another chain or contract")
        if rt is not None and not _seated_with_params(rt):
            # the owner saw the committee form a chain poll before this node did, or the
            # task's params have not reached this node yet (gossip): wait for both rather
            # than refuse (the owner would retry a retry interval later)
            with trio.move_on_after(SEAT_WAIT):
                await rt.until(partial(_seated_with_params, rt))
        if rt is None or rt.seat is None:
            raise ProtocolViolation(peer, f"this node holds no seat in task {c.task_id}")
        if rt.params is None:
            raise ProtocolViolation(peer, f"params of task {c.task_id} not known yet")
        if c.seat != rt.seat:
            raise ProtocolViolation(peer, f"shares for seat {c.seat} sent to seat {rt.seat}")
        if not rt.params.is_owner(c.owner):
            raise ProtocolViolation(peer, f"{c.owner} is not a data owner of task {c.task_id}")
        if c.modulus != task_modulus(rt.params):
            raise ProtocolViolation(peer, "shares are over the wrong field")
        if rt.is_computing():
            held = rt.contributions.get(c.owner.lower())
            if held is not None and held.to_bytes() == c.to_bytes():
                return ok()  # a retry of what this seat stored (its first reply came late)
            raise ProtocolViolation(peer, "the computation has already started")
        if not c.commitment:  # node.mpc.commitments: one signed sharing per round
            raise ProtocolViolation(peer, "contribution carries no sharing commitment")
        w = task_witness(rt.params)
        width = max(rt.params.spec.width(rt.params), 1)
        try:  # the owner's rows must be followed by their influence witness
            rows = len(c.shares) // width if w is None else table_rows(len(c.shares), w)
        except ValueError as e:
            raise ProtocolViolation(peer, str(e)) from None
        others = sum(
            len(x.shares) // width if w is None else table_rows(len(x.shares), w)
            for o, x in rt.contributions.items()
            if o != c.owner.lower()
        )
        bad_shape = rt.params.contribution_error(
            len(c.shares) if w is None else rows * width, others
        )
        if bad_shape is not None:
            raise ProtocolViolation(peer, bad_shape)
        prev = rt.contributions.get(c.owner.lower())
        if prev is not None and prev.shares != c.shares:
            raise ProtocolViolation(peer, f"{c.owner} already contributed different shares")
    except ProtocolViolation as e:
        log.warning("%s", e)
        return error(e.detail)
    # what a node stores is its own share of each owner's values, never the values;
    # committed before the owner hears "ok", so a restart still has them
    ctx.state.save_shares(c.task_id, c.round, c.owner, c.to_bytes())
    ctx.save(c.task_id, f"shares-{c.owner.lower()}.json", json.loads(c.to_bytes()), c.round)
    rt.contributions[c.owner.lower()] = c
    log.info(
        "task %d round %d: shares from owner %s (%d/%d)",
        c.task_id,
        c.round,
        c.owner,
        len(rt.contributions),
        len(rt.params.owners),
    )
    if len(rt.contributions) == len(rt.params.owners):
        rt.notify()
    return ok()
