"""Inbound messages are validated before anything acts on them."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from dnode.node.errors import ProtocolViolation, RequestRefused
from dnode.node.protocol import Announcement, Contribution, SignatureMessage, check_reply, error, ok

OWNER = Account.create()
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def contribution(**kw: object) -> Contribution:
    base = dict(
        chain_id=1337,
        contract=CONTRACT,
        task_id=1,
        owner=OWNER.address,
        seat=0,
        modulus=101,
        shares=(5, 7, 100),
    )
    return Contribution(**{**base, **kw}).signed(OWNER)  # type: ignore[arg-type]


def test_signed_contribution_roundtrips() -> None:
    c = contribution()
    assert Contribution.parse("p", c.to_bytes()) == c


def test_rerun_contribution_roundtrips() -> None:
    c = contribution(round=1, seat=4)
    assert Contribution.parse("p", c.to_bytes()) == c
    assert c.signing_hash() != contribution(seat=4).signing_hash()


def tamper(c: Contribution, **changes: object) -> bytes:
    obj = json.loads(c.to_bytes())
    obj.update(changes)
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"shares": [5, 7, 99]}, "not signed by its owner"),
        ({"seat": 1}, "not signed by its owner"),
        ({"owner": Account.create().address}, "not signed by its owner"),
        ({"shares": [5, 7, 101]}, "field elements"),
        ({"shares": []}, "non-empty"),
        ({"signature": "0x" + "00" * 65}, "malformed"),
        ({"signature": "zz"}, "0x-hex"),
        ({"task_id": "1"}, "task_id"),
        ({"round": 1}, "not signed by its owner"),  # shares for one committee only
        ({"round": 2}, "round"),
    ],
)
def test_tampered_contributions_are_dropped(changes: dict, needle: str) -> None:
    with pytest.raises(ProtocolViolation, match=needle):
        Contribution.parse("peer", tamper(contribution(), **changes))


@pytest.mark.parametrize("junk", [b"", b"\xff", b"[1]", b'{"task_id": 0, "params": "0x"}'])
def test_junk_announcements(junk: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        Announcement.parse("peer", junk)


def test_signature_message_sizes() -> None:
    good = SignatureMessage(3, b"r", b"\x01" * 65)
    assert SignatureMessage.parse("p", good.to_bytes()) == good
    rerun = SignatureMessage(3, b"r", b"\x01" * 65, round=1)
    assert SignatureMessage.parse("p", rerun.to_bytes()) == rerun
    with pytest.raises(ProtocolViolation, match="wrong size"):
        SignatureMessage.parse("p", SignatureMessage(3, b"r", b"\x01" * 64).to_bytes())


def test_replies() -> None:
    assert check_reply("p", ok(x=1))["x"] == 1
    with pytest.raises(RequestRefused, match="nope"):
        check_reply("p", error("nope"))
