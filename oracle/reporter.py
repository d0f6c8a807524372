"""Collects committee members' signatures over a result until a quorum agrees on one digest.

The contract accepts exactly one report per task, so members agree off-chain first: each
member signs the digest it computed, sends the signature to the others, and whichever member
holds a quorum for one digest first (in a staggered order) submits the single report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dnode.oracle.attestation import recover_signer
from dnode.oracle.encoding import result_digest
from dnode.oracle.errors import BadSignature


@dataclass
class SignatureSet:
    """Signatures of one task's committee, grouped by the result they sign."""

    chain_id: int
    contract: str
    task_id: int
    committee: list[str]  # seat holders' addresses, in seat order
    quorum: int
    by_digest: dict[bytes, dict[str, bytes]] = field(default_factory=dict)
    results: dict[bytes, bytes] = field(default_factory=dict)

    def add(self, result: bytes, signature: bytes) -> str:
        """Verify and keep one signature; returns its signer. Raises BadSignature if unusable."""
        digest = result_digest(result)
        signer = recover_signer(self.chain_id, self.contract, self.task_id, digest, signature)
        members = {a.lower() for a in self.committee}
        if signer.lower() not in members:
            raise BadSignature(f"{signer} holds no seat in task {self.task_id}")
        self.by_digest.setdefault(digest, {})[signer.lower()] = signature
        self.results[digest] = result
        return signer

    def quorum_result(self) -> tuple[bytes, list[bytes]] | None:
        """The result that a quorum signed and the signatures in seat order, if any."""
        for digest, sigs in self.by_digest.items():
            if len(sigs) >= self.quorum:
                order = [a.lower() for a in self.committee]
                ordered = sorted(sigs.items(), key=lambda kv: order.index(kv[0]))
                return self.results[digest], [s for _, s in ordered]
        return None

    def conflicting(self) -> bool:
        return len(self.by_digest) > 1


def reporter_rank(task_id: int, seat: int, committee_size: int) -> int:
    """0 for the member that reports first, 1 for its backup, and so on (rotates per task)."""
    return (seat - task_id) % committee_size
