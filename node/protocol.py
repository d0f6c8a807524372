"""Wire messages between requesters, data owners and nodes, and their validation.

Every inbound message is parsed here; anything malformed or unauthenticated raises
``ProtocolViolation`` so the caller can log one line, drop it and keep serving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address

from dnode.node.errors import ProtocolViolation, RequestRefused

TOPIC_TASKS = "dnode/tasks/1"
PROTO_ANNOUNCE = "/dnode/announce/1.0.0"
PROTO_PARAMS = "/dnode/params/1.0.0"
PROTO_SHARES = "/dnode/shares/1.0.0"
PROTO_SIGNATURE = "/dnode/signature/1.0.0"
PROTO_JOIN = "/dnode/join/1.0.0"
PROTO_NOTICE = "/dnode/owner-notice/1.0.0"

#: a million values plus the owner's influence witness (node.mpc.influence, < 1024 bits)
MAX_SHARES_PER_OWNER = 1_000_000 + 1024


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def loads(peer: str, data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolViolation(peer, "not JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolViolation(peer, "not a JSON object")
    return obj


def _int(peer: str, obj: dict[str, Any], key: str, lo: int = 0, hi: int | None = None) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
        raise ProtocolViolation(peer, f"field {key!r} missing or out of range")
    return v


def _hex(peer: str, obj: dict[str, Any], key: str) -> bytes:
    v = obj.get(key)
    try:
        if not isinstance(v, str) or not v.startswith("0x"):
            raise ValueError
        return bytes.fromhex(v[2:])
    except ValueError:
        raise ProtocolViolation(peer, f"field {key!r} is not 0x-hex") from None


def _commitment(peer: str, obj: dict[str, Any]) -> tuple[bytes, ...]:
    v = obj.get("commitment", [])
    if not isinstance(v, list) or len(v) > 64:
        raise ProtocolViolation(peer, "field 'commitment' must be a list of digests")
    out = tuple(_hex(peer, {"d": d}, "d") for d in v)
    if any(len(d) != 32 for d in out):
        raise ProtocolViolation(peer, "a commitment digest is not 32 bytes")
    return out


@dataclass(frozen=True)
class Announcement:
    """A requester tells the network a task's off-chain params (checked against the chain)."""

    task_id: int
    params: bytes

    def to_bytes(self) -> bytes:
        return dumps({"task_id": self.task_id, "params": "0x" + self.params.hex()})

    @classmethod
    def parse(cls, peer: str, data: bytes) -> Announcement:
        obj = loads(peer, data)
        return cls(_int(peer, obj, "task_id", 1), _hex(peer, obj, "params"))


@dataclass(frozen=True)
class Contribution:
    """One data owner's Shamir shares for ONE committee seat, signed by the owner's key."""

    chain_id: int
    contract: str
    task_id: int
    owner: str
    seat: int
    modulus: int
    shares: tuple[int, ...]
    signature: bytes = b""
    round: int = 0  # 0: the task's committee; 1: its re-execution committee (a dispute)
    # the owner's per-seat share digests (node.mpc.commitments.seat_digests), the same list
    # in every seat's contribution: binds the owner to one sharing per round
    commitment: tuple[bytes, ...] = ()

    def body(self) -> dict[str, Any]:
        extra = {"commitment": ["0x" + d.hex() for d in self.commitment]} if self.commitment else {}
        return {
            **extra,
            "chain_id": self.chain_id,
            "contract": to_checksum_address(self.contract),
            "task_id": self.task_id,
            "round": self.round,
            "owner": to_checksum_address(self.owner),
            "seat": self.seat,
            "modulus": self.modulus,
            "shares": list(self.shares),
        }

    def signing_hash(self) -> bytes:
        return keccak(b"dnode.contribution.v1" + dumps(self.body()))

    def signed(self, account: Any) -> Contribution:
        sig = account.sign_message(encode_defunct(primitive=self.signing_hash())).signature
        return Contribution(**{**self.__dict__, "signature": bytes(sig)})

    def to_bytes(self) -> bytes:
        return dumps({**self.body(), "signature": "0x" + self.signature.hex()})

    @classmethod
    def parse(cls, peer: str, data: bytes) -> Contribution:
        obj = loads(peer, data)
        shares = obj.get("shares")
        if not isinstance(shares, list) or not 1 <= len(shares) <= MAX_SHARES_PER_OWNER:
            raise ProtocolViolation(peer, "field 'shares' must be a non-empty list")
        modulus = _int(peer, obj, "modulus", 3)
        if not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < modulus for s in shares
        ):
            raise ProtocolViolation(peer, "shares must be field elements")
        try:
            owner = to_checksum_address(str(obj.get("owner")))
            contract = to_checksum_address(str(obj.get("contract")))
        except ValueError:
            raise ProtocolViolation(peer, "owner/contract is not an address") from None
        c = cls(
            chain_id=_int(peer, obj, "chain_id", 1),
            contract=contract,
            task_id=_int(peer, obj, "task_id", 1),
            owner=owner,
            seat=_int(peer, obj, "seat", 0, 15),
            modulus=modulus,
            shares=tuple(shares),
            signature=_hex(peer, obj, "signature"),
            round=_int(peer, obj, "round", 0, 1),
            commitment=_commitment(peer, obj),
        )
        if c.commitment:
            from dnode.node.mpc.commitments import seat_digest

            if c.seat >= len(c.commitment) or c.commitment[c.seat] != seat_digest(
                c.chain_id, c.contract, c.task_id, c.round, c.owner, c.seat, c.modulus, c.shares
            ):
                raise ProtocolViolation(peer, "shares do not match the owner's commitment")
        try:
            signer = Account.recover_message(
                encode_defunct(primitive=c.signing_hash()), signature=c.signature
            )
        except Exception:  # eth-keys raises several types for junk signatures
            raise ProtocolViolation(peer, "contribution signature is malformed") from None
        if signer.lower() != owner.lower():
            raise ProtocolViolation(peer, f"contribution is not signed by its owner {owner}")
        return c


@dataclass(frozen=True)
class SignatureMessage:
    """A committee member's signature over the result it computed (round 1: re-execution)."""

    task_id: int
    result: bytes
    signature: bytes
    round: int = 0
    # node.mpc.commitments.transcript_tag(session transcript, signature); empty for HE
    transcript_tag: bytes = b""

    def to_bytes(self) -> bytes:
        tag = {"transcript_tag": "0x" + self.transcript_tag.hex()} if self.transcript_tag else {}
        return dumps(
            {
                **tag,
                "task_id": self.task_id,
                "round": self.round,
                "result": "0x" + self.result.hex(),
                "signature": "0x" + self.signature.hex(),
            }
        )

    @classmethod
    def parse(cls, peer: str, data: bytes) -> SignatureMessage:
        obj = loads(peer, data)
        result = _hex(peer, obj, "result")
        sig = _hex(peer, obj, "signature")
        if len(result) > 1024 or len(sig) != 65:
            raise ProtocolViolation(peer, "result or signature has the wrong size")
        tag = _hex(peer, obj, "transcript_tag") if "transcript_tag" in obj else b""
        if len(tag) not in (0, 32):
            raise ProtocolViolation(peer, "transcript tag has the wrong size")
        rnd = _int(peer, obj, "round", 0, 1)
        return cls(_int(peer, obj, "task_id", 1), result, sig, rnd, tag)


@dataclass(frozen=True)
class JoinIntent:
    """A node's signed consent to a committee seat (round 0) or a re-execution seat (round 1).

    Nodes exchange these (gossip on ``TOPIC_TASKS`` and direct ``PROTO_JOIN`` requests); one
    member then binds the whole committee on-chain in a single ``form_committee``.
    """

    task_id: int
    round: int
    node: str
    signature: bytes

    def to_bytes(self) -> bytes:
        return dumps(
            {
                "kind": "join",
                "task_id": self.task_id,
                "round": self.round,
                "node": to_checksum_address(self.node),
                "signature": "0x" + self.signature.hex(),
            }
        )

    @classmethod
    def parse(cls, peer: str, data: bytes, chain_id: int, contract: str) -> JoinIntent:
        """Parse and authenticate: the signature must recover to ``node``."""
        from dnode.oracle.attestation import recover_join
        from dnode.oracle.errors import BadSignature

        obj = loads(peer, data)
        if obj.get("kind") != "join":
            raise ProtocolViolation(peer, "not a join intent")
        try:
            node = to_checksum_address(str(obj.get("node")))
        except ValueError:
            raise ProtocolViolation(peer, "node is not an address") from None
        msg = cls(
            _int(peer, obj, "task_id", 1),
            _int(peer, obj, "round", 0, 1),
            node,
            _hex(peer, obj, "signature"),
        )
        try:
            signer = recover_join(chain_id, contract, msg.task_id, msg.round, msg.signature)
        except BadSignature as e:
            raise ProtocolViolation(peer, str(e)) from None
        if signer.lower() != node.lower():
            raise ProtocolViolation(peer, f"join intent is not signed by {node}")
        return msg


NOTICE_STATES = ("accepted", "approved", "pending", "rejected", "refused", "delivered")


@dataclass(frozen=True)
class OwnerNotice:
    """A data owner's signed word on a task: whether its agent contributes, waits for the
    owner (pending) or refuses, and why. Nodes keep the newest per (task, owner) (highest
    ``seq``) and serve them to requesters (``dnode task status --bootstrap``)."""

    chain_id: int
    contract: str
    task_id: int
    owner: str
    state: str
    reason: str
    seq: int  # milliseconds since the epoch of the decision: a later notice supersedes
    signature: bytes = b""

    def body(self) -> dict[str, Any]:
        return {
            "kind": "owner-notice",
            "chain_id": self.chain_id,
            "contract": to_checksum_address(self.contract),
            "task_id": self.task_id,
            "owner": to_checksum_address(self.owner),
            "state": self.state,
            "reason": self.reason,
            "seq": self.seq,
        }

    def signing_hash(self) -> bytes:
        return keccak(b"dnode.owner-notice.v1" + dumps(self.body()))

    def signed(self, account: Any) -> OwnerNotice:
        sig = account.sign_message(encode_defunct(primitive=self.signing_hash())).signature
        return OwnerNotice(**{**self.__dict__, "signature": bytes(sig)})

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": "0x" + self.signature.hex()}

    def to_bytes(self) -> bytes:
        return dumps(self.to_json())

    @classmethod
    def from_obj(cls, peer: str, obj: dict[str, Any]) -> OwnerNotice:
        """Parse and authenticate: the signature must recover to ``owner``."""
        if obj.get("kind") != "owner-notice":
            raise ProtocolViolation(peer, "not an owner notice")
        state, reason = obj.get("state"), obj.get("reason")
        if state not in NOTICE_STATES:
            raise ProtocolViolation(peer, "owner notice has an unknown state")
        if not isinstance(reason, str) or len(reason) > 1000:
            raise ProtocolViolation(peer, "owner notice reason missing or too long")
        try:
            owner = to_checksum_address(str(obj.get("owner")))
            contract = to_checksum_address(str(obj.get("contract")))
        except ValueError:
            raise ProtocolViolation(peer, "owner/contract is not an address") from None
        n = cls(
            _int(peer, obj, "chain_id", 1),
            contract,
            _int(peer, obj, "task_id", 1),
            owner,
            state,
            reason,
            _int(peer, obj, "seq", 0),
            _hex(peer, obj, "signature"),
        )
        try:
            signer = Account.recover_message(
                encode_defunct(primitive=n.signing_hash()), signature=n.signature
            )
        except Exception:  # eth-keys raises several types for junk signatures
            raise ProtocolViolation(peer, "owner notice signature is malformed") from None
        if signer.lower() != owner.lower():
            raise ProtocolViolation(peer, f"owner notice is not signed by its owner {owner}")
        return n

    @classmethod
    def parse(cls, peer: str, data: bytes) -> OwnerNotice:
        return cls.from_obj(peer, loads(peer, data))


def ok(**extra: Any) -> bytes:
    return dumps({"ok": True, **extra})


def error(detail: str) -> bytes:
    return dumps({"ok": False, "error": detail})


def check_reply(peer: str, data: bytes) -> dict[str, Any]:
    obj = loads(peer, data)
    if not obj.get("ok"):
        raise RequestRefused(peer, str(obj.get("error", "request refused")))
    return obj
