"""Issue 12, reports: a committee member whose signature the report left out (a reporter or
a front-runner may submit any quorum) adds it with ``cosign`` during the challenge window and
is paid like the other signers; a member whose own result differs does not (and says why).

The decision is ``node.task.policy.cosign_decision``; this module reads the chain and the
signing-protection table and sends the transaction.
"""

from __future__ import annotations

import logging

from dnode.contracts.errors import ContractsError, TransactionReverted
from dnode.node.task.context import NodeContext
from dnode.node.task.policy import cosign_decision
from dnode.node.task.state import TaskRuntime

log = logging.getLogger("dnode.node")


async def cosign_if_left_out(ctx: NodeContext, rt: TaskRuntime) -> bool:
    """Co-sign the accepted report of ``rt``'s task if it left this member out; True if a
    cosign transaction went through. Round 0 only (the contract's rule)."""
    if rt.round or rt.cosigned:
        return False
    row = ctx.state.signature(rt.task_id)  # what signing protection says we signed
    if row is not None and row.round != 0:
        row = None
    task = await ctx.call(ctx.chain.task_info, rt.task_id)
    period = int(ctx.chain.deployment.params["challenge_period"])
    now = await ctx.call(ctx.chain.block_timestamp)
    me = ctx.address.lower()
    decision = cosign_decision(
        task, me, row.result_digest if row is not None else None, now, period
    )
    if not decision.ok:
        if decision.mismatch:
            log.warning("task %d: not co-signing the report: %s", rt.task_id, decision.reason)
        else:
            log.debug("task %d: no co-signature: %s", rt.task_id, decision.reason)
        return False
    assert row is not None
    rt.cosigned = True
    try:
        await ctx.tx(ctx.chain.cosign, rt.task_id, row.signature)
    except TransactionReverted as e:
        log.info("task %d: co-signature not taken: %s", rt.task_id, e.reason)
        return False
    except ContractsError as e:
        rt.cosigned = False
        log.warning("task %d: co-signature failed: %s", rt.task_id, e)
        return False
    seat = [a.lower() for a in task.committee].index(me)
    log.info(
        "task %d: report left seat %d out of its signers (bitmap %s); co-signed, paid at "
        "finalization",
        rt.task_id,
        seat,
        bin(task.signers_bitmap),
    )
    return True
