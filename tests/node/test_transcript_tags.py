"""A co-signer must prove it took part in the session (issue 13, finding 4: lazy signers)."""

from __future__ import annotations

import pytest
from eth_account import Account

from dnode.node.errors import ProtocolViolation
from dnode.node.mpc.commitments import transcript_tag
from dnode.node.protocol import SignatureMessage
from dnode.node.task.attest import accept_signature
from dnode.node.task.state import TaskRuntime
from dnode.oracle.attestation import sign_report
from dnode.oracle.reporter import SignatureSet

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
MEMBERS = [Account.create() for _ in range(3)]
RESULT = b"\x01" * 96
OURS = b"\x07" * 32  # this node's session transcript


def runtime() -> TaskRuntime:
    committee = [a.address for a in MEMBERS]
    rt = TaskRuntime(task_id=5, committee=committee, transcript=OURS)
    rt.signatures = SignatureSet(1337, CONTRACT, 5, committee, 2)
    return rt


def message(who: int, transcript: bytes | None) -> SignatureMessage:
    sig = sign_report(MEMBERS[who], 1337, CONTRACT, 5, RESULT)
    tag = transcript_tag(transcript, sig) if transcript is not None else b""
    parsed = SignatureMessage.parse("p", SignatureMessage(5, RESULT, sig, 0, tag).to_bytes())
    assert parsed.transcript_tag == tag
    return parsed


def accept(rt: TaskRuntime, msg: SignatureMessage) -> None:
    accept_signature(rt, "peer", msg)


def test_participant_is_accepted() -> None:
    rt = runtime()
    accept(rt, message(1, OURS))
    accept(rt, message(2, OURS))
    assert rt.signatures is not None and rt.signatures.quorum_result() is not None
    assert rt.has_quorum()


@pytest.mark.parametrize("transcript", [None, b"\x08" * 32], ids=["no tag", "other session"])
def test_lazy_or_foreign_signer_is_refused(transcript: bytes | None) -> None:
    rt = runtime()
    with pytest.raises(ProtocolViolation, match="transcript tag"):
        accept(rt, message(1, transcript))
    assert rt.signatures is not None and not rt.signatures.by_digest


def test_copied_tag_does_not_transfer() -> None:
    """A lazy node that copies a participant's tag still fails: the tag binds the signature."""
    rt = runtime()
    honest = message(1, OURS)
    lazy_sig = sign_report(MEMBERS[2], 1337, CONTRACT, 5, RESULT)
    with pytest.raises(ProtocolViolation, match="transcript tag"):
        accept(rt, SignatureMessage(5, RESULT, lazy_sig, 0, honest.transcript_tag))
