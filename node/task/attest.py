"""Step 5, attest: sign the result once (signing protection) and share signatures."""

from __future__ import annotations

import logging

import trio

from dnode.node.errors import DoubleSignRefused, NodeError, ProtocolViolation
from dnode.node.mpc.commitments import check_transcript_tag
from dnode.node.protocol import (
    PROTO_SIGNATURE,
    SignatureMessage,
    error,
    ok,
)
from dnode.node.task.context import NodeContext
from dnode.node.task.state import TaskRuntime
from dnode.oracle.attestation import sign_report
from dnode.oracle.errors import OracleError

log = logging.getLogger("dnode.node")
#: seconds a peer's signature request waits for our own result before it is kept for later
SIGNED_WAIT = 5.0


def sign_once(ctx: NodeContext, rt: TaskRuntime, result: bytes) -> bytes:
    """The report signature, through the signing-protection table (never two results)."""

    def sign(r: bytes) -> bytes:
        return sign_report(ctx.cfg.account, ctx.chain_id, ctx.contract, rt.task_id, r)

    try:
        return ctx.state.sign_once(rt.task_id, rt.round, result, sign)
    except DoubleSignRefused as e:
        log.error("signing protection: %s", e)
        raise


async def send_signature(ctx: NodeContext, peer: str, msg: bytes) -> None:
    for attempt in range(5):
        try:
            await ctx.host.request(peer, PROTO_SIGNATURE, msg, timeout=10)
            return
        except NodeError as e:
            log.info("signature to %s not delivered (attempt %d): %s", peer, attempt + 1, e)
            await trio.sleep(1 + attempt)


async def on_signature(ctx: NodeContext, peer: str, data: bytes) -> bytes:
    try:
        msg = SignatureMessage.parse(peer, data)
        rt = ctx.known(msg.task_id, msg.round)
        if rt is None or rt.signatures is None:
            # signatures can outrun our own MPC end; wait briefly for the committee view
            with trio.move_on_after(30):
                while (rt := ctx.known(msg.task_id, msg.round)) is None or rt.signatures is None:
                    await trio.sleep(0.2)
        if rt is None or rt.signatures is None:
            raise ProtocolViolation(peer, f"no committee known for task {msg.task_id}")
        # a co-signer must show it took part in OUR session (node.mpc.commitments):
        # until our own result exists there is nothing to check against -> keep it
        with trio.move_on_after(SIGNED_WAIT):
            await rt.until(rt.is_signed)
        if not rt.is_signed():
            if len(rt.pending_signatures) >= 8 * max(1, len(rt.committee)):
                raise ProtocolViolation(peer, "too many early signatures")
            rt.pending_signatures.append((peer, msg))
            return ok()
        accept_signature(rt, peer, msg)
    except ProtocolViolation as e:
        log.warning("%s", e)
        return error(e.detail)
    return ok()


def accept_signature(rt: TaskRuntime, peer: str, msg: SignatureMessage) -> None:
    """Add a peer's signature once our own result (and transcript) is known."""
    assert rt.signatures is not None
    if rt.transcript is not None and not check_transcript_tag(
        rt.transcript, msg.signature, msg.transcript_tag
    ):
        raise ProtocolViolation(peer, "signature lacks a valid session transcript tag")
    try:
        rt.signatures.add(msg.result, msg.signature)
    except OracleError as e:
        raise ProtocolViolation(peer, str(e)) from None
    if rt.signatures.conflicting():
        log.error("task %d: committee members signed different results", msg.task_id)
    if rt.signatures.quorum_result() is not None:
        rt.notify()
