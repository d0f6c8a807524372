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

from dnode.contracts.client import ChainEvent, NodeInfo, TaskInfo, TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.contracts.manifest import Deployment
from dnode.oracle.attestation import recover_signer, result_digest
from dnode.oracle.errors import BadSignature
from dnode.scheduler.programs import CAP_MPC, TaskParams

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

    def now(self) -> int:
        return int(time.time()) + self.offset

    def register(self, address: str, peer_id: str, stake: int = 10**18) -> None:
        self.nodes[address.lower()] = NodeInfo(address, peer_id, CAP_MPC, stake, 0, 0, 0)

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

    def block_timestamp(self) -> int:
        return self.ledger.now()

    # ---- transactions ---------------------------------------------------------------------

    def form_committee(
        self, task_id: int, members: list[str], sigs: list[bytes | None], draws: list[int]
    ) -> None:
        self.calls.append("form_committee")
        info = self.task_info(task_id)
        if info.status != TaskStatus.OPEN or len(members) != info.committee_size:
            raise self.ledger.revert("form_committee", "market: bad committee")
        self.ledger.update(task_id, committee=tuple(members), status=TaskStatus.COMPUTING)
        self.ledger.emit("CommitteeFormed", task_id=task_id, round=0, members=list(members))

    def report(self, task_id: int, result: bytes, signatures: list[bytes]) -> None:
        self.calls.append("report")
        info = self.task_info(task_id)
        if info.status != TaskStatus.COMPUTING:
            raise self.ledger.revert("report", "market: not computing")
        seats = {a.lower() for a in info.committee}
        signers = set()
        for sig in signatures:
            try:
                signer = recover_signer(
                    self.deployment.chain_id,
                    self.deployment.address,
                    task_id,
                    result_digest(result),
                    sig,
                )
            except BadSignature:
                raise self.ledger.revert("report", "market: bad signature") from None
            if signer.lower() not in seats:
                raise self.ledger.revert("report", "market: signer holds no seat")
            signers.add(signer.lower())
        if len(signers) < info.quorum:
            raise self.ledger.revert("report", "market: no quorum")
        self.ledger.update(
            task_id, status=TaskStatus.REPORTED, reported_at=self.ledger.now(), result=result
        )
        self.ledger.emit("ResultReported", task_id=task_id, round=0)

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
