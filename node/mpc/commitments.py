"""Owner input commitments and session-transcript tags (issue 13, finding 4).

Sharing commitment
    A data owner shares its vector once per (task, round) and signs, in every seat's
    contribution, the SAME list of per-seat digests ``seat_digest(..., seat j, shares_j)``.
    Each node checks that its own shares hash to its entry; inside the MPC session the
    parties compare :func:`sharing_commitment` of every owner's list, so an owner that
    sends different lists to different seats (equivocates) is named before anything is
    computed, and the consistency check of :class:`node.mpc.malicious.Guard` then binds
    the owner to ONE value vector per round.  The signed header carries no shares, so a
    node can show it to anyone without revealing its share vector.

    This binds inputs within a round only.  A re-execution committee needs fresh shares
    (the old shares must not reach new nodes), and checking that two sharings hide the
    same values needs a commitment scheme over the MPC field (e.g. Pedersen VSS in a group
    of order p) that dnode does not have: a rerun cannot be bound to round-0 inputs, so a
    differing rerun must never slash (docs/protocol.md, "Disputes").

Transcript tag
    Every honest party of one session ends with the same :attr:`Guard.transcript` (a hash
    of every share every party sent when a value was opened, the checks included).  A
    signer attaches ``transcript_tag(transcript, signature)`` to the report signature it
    sends its peers; a peer that computed checks the tag against its own transcript and
    refuses a signature without a matching one.  A node that did not take part in the
    session cannot produce a tag for its own signature (unless a participant hands it the
    transcript, i.e. colludes).  The tag is a peer-to-peer check: the chain cannot verify it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = [
    "check_transcript_tag",
    "seat_digest",
    "seat_digests",
    "sharing_commitment",
    "transcript_tag",
]


def _field_bytes(shares: Sequence[int], modulus: int) -> bytes:
    width = (modulus.bit_length() + 7) // 8
    return b"".join(int(s).to_bytes(width, "big") for s in shares)


def seat_digest(
    chain_id: int,
    contract: str,
    task_id: int,
    round: int,
    owner: str,
    seat: int,
    modulus: int,
    shares: Sequence[int],
) -> bytes:
    """SHA-256 binding one seat's share vector to its task, round, owner and seat."""
    head = f"dnode.seat-shares.v1|{chain_id}|{contract.lower()}|{task_id}|{round}|"
    head += f"{owner.lower()}|{seat}|{modulus}|{len(shares)}|"
    return hashlib.sha256(head.encode() + _field_bytes(shares, modulus)).digest()


def seat_digests(
    chain_id: int,
    contract: str,
    task_id: int,
    round: int,
    owner: str,
    modulus: int,
    shares_by_seat: Sequence[Sequence[int]],
) -> list[bytes]:
    """The owner's per-seat digests, in seat order (what it signs in every contribution)."""
    return [
        seat_digest(chain_id, contract, task_id, round, owner, j, modulus, s)
        for j, s in enumerate(shares_by_seat)
    ]


def sharing_commitment(digests: Sequence[bytes]) -> bytes:
    """One digest for an owner's whole sharing of one round (compared inside the session)."""
    return hashlib.sha256(b"dnode.sharing.v1" + b"".join(digests)).digest()


def transcript_tag(transcript: bytes, signature: bytes) -> bytes:
    """Proof that the holder of ``signature`` took part in the session of ``transcript``."""
    return hmac.new(transcript, b"dnode.transcript-tag.v1" + bytes(signature), "sha256").digest()


def check_transcript_tag(transcript: bytes, signature: bytes, tag: bytes) -> bool:
    return hmac.compare_digest(transcript_tag(transcript, signature), bytes(tag))
