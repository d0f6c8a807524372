"""An in-memory chain: one ``FakeLedger`` (the contract's records and rules that the node steps
rely on) and a ``FakeChain`` per account with the ``ChainClient`` calls the steps make.

It keeps the rules a node must not be able to bypass (a report needs a quorum of seat-holder
signatures over the same result; finalize waits for the challenge window), so step tests that
pass against it exercise real checks, without a devnet or processes.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from eth_utils import keccak

from dnode.contracts.client import ChainEvent, NodeInfo, NodeTerms, TaskInfo, TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.contracts.manifest import Deployment
from dnode.oracle.attestation import recover_signer, result_digest
from dnode.oracle.errors import BadSignature
from dnode.scheduler.programs import CAP_MPC, TaskParams
from dnode.scheduler.sortition import draw_position

CONTRACT = "0x00000000000000000000000000000000000D0de1"
CHALLENGE = 30


class FakeLedger:
    def __init__(self, chain_id: int = 31337) -> None:
        self.deployment = Deployment(
            chain_id,
            CONTRACT,
            [],
            0,
            {"seat_collateral": 10**17, "challenge_period": CHALLENGE},
        )
        self.nodes: dict[str, NodeInfo] = {}
        self.tasks: dict[int, TaskInfo] = {}
        self.events: list[ChainEvent] = []
        self.declines: list[tuple[int, str, str]] = []
        self.offset = 0  # seconds the chain clock runs ahead of the wall clock
        # the sortition's inputs (scheduler.candidates reads them through FakeChain): one
        # stake slot per registered node, a fixed seed block
        self.slots: list[str] = []
        self.seed = keccak(text="fake-seed")
        self.head = 10

    def now(self) -> int:
        return int(time.time()) + self.offset

    def register(self, address: str, peer_id: str, stake: int = 10**18) -> None:
        self.nodes[address.lower()] = NodeInfo(address, peer_id, CAP_MPC, stake, 0, 0, 0)
        self.slots.append(address)

    def post(self, task_id: int, requester: str, params: TaskParams, size: int = 3) -> TaskInfo:
        now = self.now()
        info = TaskInfo(
            task_id=task_id,
            requester=requester,
            program_id=b"\0" * 32,
            params_digest=params.digest,
            capability=params.capability,
            committee_size=size,
            quorum=size // 2 + 1,
            reward=10**16,
            seat_deadline=now + 60,
            report_deadline=now + 600,
            status=TaskStatus.OPEN,
            seats_taken=0,
            reported_at=0,
            result_digest=b"\0" * 32,
            seed_block=1,
            slot_snapshot=len(self.slots),
            posted_at=now,
        )
        self.tasks[task_id] = info
        self.emit("TaskPosted", task_id=task_id, params_digest=params.digest)
        return info

    def emit(self, name: str, **args: Any) -> ChainEvent:
        ev = ChainEvent(name, args, len(self.events) + 1, f"0x{len(self.events):064x}", 0)
        self.events.append(ev)
        return ev

    def update(self, task_id: int, **changes: Any) -> None:
        self.tasks[task_id] = dataclasses.replace(self.tasks[task_id], **changes)

    def revert(self, action: str, reason: str) -> TransactionReverted:
        return TransactionReverted(action, reason)


class FakeChain:
    """One account's handle on the ledger (the subset of ``ChainClient`` the node uses)."""

    def __init__(self, ledger: FakeLedger, address: str) -> None:
        self.ledger = ledger
        self.address_of = address
        self.deployment = ledger.deployment
        self.outbox: Any = None
        self.calls: list[str] = []

    # ---- reads ----------------------------------------------------------------------------

    def node_info(self, address: str) -> NodeInfo:
        return self.ledger.nodes.get(address.lower(), NodeInfo(address, "", 0, 0, 0, 0, 0))

    def is_active(self, address: str) -> bool:
        return address.lower() in self.ledger.nodes

    def task_info(self, task_id: int) -> TaskInfo:
        info = self.ledger.tasks.get(task_id)
        if info is None:
            return TaskInfo(task_id, "", b"", b"", 0, 0, 0, 0, 0, 0, TaskStatus.NONE, 0, 0, b"")
        return info

    def task_status(self, task_id: int) -> TaskStatus:
        return self.task_info(task_id).status

    def seats(self, task_id: int) -> list[str]:
        return list(self.task_info(task_id).committee)

    def block_timestamp(self, block: str = "latest") -> int:
        return self.ledger.now()

    def latest_block(self) -> int:
        return self.ledger.head

    def block_hash(self, number: int) -> str | None:
        return "0x" + self.ledger.seed.hex() if number == 1 else None

    def slot_holder(self, pos: int) -> str | None:
        slots = self.ledger.slots
        return slots[pos] if 0 <= pos < len(slots) else None

    def node_terms(self, address: str) -> NodeTerms:
        return NodeTerms(0, 0, False)

    # ---- transactions ---------------------------------------------------------------------

    def form_committee(
        self,
        task_id: int,
        members: list[str],
        sigs: list[bytes | None],
        draws: list[int],
        skips: int = 0,
        claim_period: int = 0,
    ) -> None:
        """``skips``: eligible candidates the formation passed over (the test says how many);
        with skips, ``claim_period`` seconds during which they may claim_seat."""
        self.calls.append("form_committee")
        info = self.task_info(task_id)
        if info.status != TaskStatus.OPEN or len(members) != info.committee_size:
            raise self.ledger.revert("form_committee", "market: bad committee")
        until = self.ledger.now() + claim_period if skips else 0
        self.ledger.update(
            task_id,
            committee=tuple(members),
            draws=tuple(draws),
            skips=skips,
            claims_until=until,
            status=TaskStatus.COMPUTING,
        )
        self.ledger.emit(
            "CommitteeFormed",
            task_id=task_id,
            round=0,
            members=list(members),
            skips=skips,
            claims_until=until,
        )

    def claim_seat(self, task_id: int, draw: int) -> None:
        """The contract's claim rule: a non-member holding ``draw``, ranked above the worst
        member, during the claim period, displaces that member."""
        self.calls.append("claim_seat")
        info = self.task_info(task_id)
        me = self.address_of
        if info.status != TaskStatus.COMPUTING or not info.skips:
            raise self.ledger.revert("claim_seat", "market: no skipped seats")
        if self.ledger.now() >= info.claims_until:
            raise self.ledger.revert("claim_seat", "market: claim period over")
        pos = draw_position(self.ledger.seed, task_id, 0, draw, info.slot_snapshot)
        if pos is None or self.slot_holder(pos) != me:
            raise self.ledger.revert("claim_seat", "sortition: claimant not drawn")
        if me.lower() in (a.lower() for a in info.committee):
            raise self.ledger.revert("claim_seat", "market: already seated")
        worst = max(range(len(info.draws)), key=lambda i: info.draws[i])
        if draw >= info.draws[worst]:
            raise self.ledger.revert("claim_seat", "sortition: claimant ranked below")
        committee, draws = list(info.committee), list(info.draws)
        displaced = committee[worst]
        committee[worst], draws[worst] = me, draw
        skips = info.skips - 1
        self.ledger.update(
            task_id,
            committee=tuple(committee),
            draws=tuple(draws),
            skips=skips,
            claims_until=info.claims_until if skips else 0,
        )
        self.ledger.emit(
            "SeatClaimed",
            task_id=task_id,
            node=me,
            round=0,
            seat=worst,
            draw=draw,
            displaced=displaced,
        )

    def cosign(self, task_id: int, signature: bytes) -> None:
        self.calls.append("cosign")
        info = self.task_info(task_id)
        if info.status != TaskStatus.REPORTED:
            raise self.ledger.revert("cosign", "oracle: not reported")
        if self.ledger.now() >= info.reported_at + CHALLENGE:
            raise self.ledger.revert("cosign", "market: challenge window closed")
        signer = self._signer(task_id, info.result or b"", signature, "cosign")
        seats = [a.lower() for a in info.committee]
        if signer not in seats:
            raise self.ledger.revert("cosign", "oracle: signer not in committee")
        bit = 1 << seats.index(signer)
        if info.signers_bitmap & bit:
            raise self.ledger.revert("cosign", "oracle: already signed")
        self.ledger.update(task_id, signers_bitmap=info.signers_bitmap | bit)
        self.ledger.emit("CoSigned", task_id=task_id, node=signer, seat=seats.index(signer))

    def _signer(self, task_id: int, result: bytes, sig: bytes, action: str) -> str:
        try:
            return recover_signer(
                self.deployment.chain_id,
                self.deployment.address,
                task_id,
                result_digest(result),
                sig,
            ).lower()
        except BadSignature:
            raise self.ledger.revert(action, "market: bad signature") from None

    def report(self, task_id: int, result: bytes, signatures: list[bytes]) -> None:
        self.calls.append("report")
        info = self.task_info(task_id)
        if info.status != TaskStatus.COMPUTING:
            raise self.ledger.revert("report", "market: not computing")
        if info.skips and self.ledger.now() < info.claims_until:
            raise self.ledger.revert("report", "oracle: seat claims still open")
        seats = [a.lower() for a in info.committee]
        signers = set()
        for sig in signatures:
            signer = self._signer(task_id, result, sig, "report")
            if signer not in seats:
                raise self.ledger.revert("report", "market: signer holds no seat")
            signers.add(signer)
        if len(signers) < info.quorum:
            raise self.ledger.revert("report", "market: no quorum")
        bitmap = sum(1 << seats.index(a) for a in signers)
        self.ledger.update(
            task_id,
            status=TaskStatus.REPORTED,
            reported_at=self.ledger.now(),
            result=result,
            result_digest=result_digest(result),
            signers_bitmap=bitmap,
            claims_until=0,
        )
        self.ledger.emit("ResultReported", task_id=task_id, round=0, signers_bitmap=bitmap)

    def finalize(self, task_id: int) -> None:
        self.calls.append("finalize")
        info = self.task_info(task_id)
        if info.status != TaskStatus.REPORTED:
            raise self.ledger.revert("finalize", "market: not reported")
        if self.ledger.now() < info.reported_at + CHALLENGE:
            raise self.ledger.revert("finalize", "market: challenge window open")
        self.ledger.update(task_id, status=TaskStatus.FINALIZED)
        self.ledger.emit("TaskFinalized", task_id=task_id)

    def decline(self, task_id: int, reason: str) -> None:
        self.calls.append("decline")
        self.ledger.declines.append((task_id, self.address_of, reason))
        self.ledger.emit("SeatDeclined", task_id=task_id, round=0, node=self.address_of)
