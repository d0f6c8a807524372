"""Off-chain reader of attested results: what a requester or an off-chain dApp trusts."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.client import ChainClient, TaskStatus
from oracle.encoding import AggregateResult, result_digest
from oracle.errors import ResultMismatch, ResultNotAvailable


@dataclass(frozen=True)
class AttestedResult:
    task_id: int
    status: TaskStatus
    digest: bytes
    result: bytes
    value: AggregateResult
    final: bool


def read_result(chain: ChainClient, task_id: int) -> AttestedResult:
    """Read the report from the oracle contract and re-check its digest before decoding."""
    status, digest, result = chain.result_of(task_id)
    status = TaskStatus(status)
    if status not in (TaskStatus.REPORTED, TaskStatus.FINALIZED, TaskStatus.OVERTURNED):
        raise ResultNotAvailable(task_id, status.name.lower())
    if result_digest(result) != digest:
        raise ResultMismatch(task_id, "0x" + digest.hex(), "0x" + result_digest(result).hex())
    return AttestedResult(
        task_id,
        status,
        digest,
        result,
        AggregateResult.decode(result),
        status in (TaskStatus.FINALIZED, TaskStatus.OVERTURNED),
    )
