"""Off-chain reader of attested results: what a requester or an off-chain dApp trusts.

Reads every task, plain or consumer (a plain task's result bytes live only in its
ResultReported event; a consumer task's are also stored for the contract's ``result_of``),
re-checks the bytes against the attested digest and decodes them: a public aggregate as
``abi(int256[] values, uint8 decimals, uint256 count)``, a private (HE) result as its blob
digest and locator (the ciphertext itself never goes on-chain).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dnode.contracts.client import HE, ChainClient, TaskInfo, TaskStatus
from dnode.oracle.encoding import AggregateResult, decode_private, result_digest
from dnode.oracle.errors import OracleError, ResultMismatch, ResultNotAvailable, UnknownTask

ATTESTED = (TaskStatus.REPORTED, TaskStatus.FINALIZED, TaskStatus.OVERTURNED)
FINAL = (TaskStatus.FINALIZED, TaskStatus.OVERTURNED)
REVERSED = 2  # DisputeResolved.outcome of an overturned result (market.vy)


@dataclass(frozen=True)
class AttestedResult:
    task_id: int
    status: TaskStatus
    digest: bytes
    result: bytes
    value: AggregateResult
    final: bool


@dataclass(frozen=True)
class PrivateResult:
    """An HE result as the chain attests it: ``abi.encode(bytes32 blob_digest, string
    locator)``; the requester fetches the blob (``dnode task result``) and decrypts it."""

    blob_digest: bytes
    locator: str


@dataclass(frozen=True)
class OracleResult:
    """One task's attested result, decoded, with how it reached its consumer (if any)."""

    task_id: int
    program: str | None
    status: TaskStatus
    digest: bytes
    result: bytes
    final: bool
    value: AggregateResult | None = None  # public aggregate
    private: PrivateResult | None = None  # HE
    callback: str | None = None
    callback_ok: bool | None = None  # None: no call made (yet)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": self.task_id,
            "program": self.program,
            "status": self.status.name.lower(),
            "final": self.final,
            "result_digest": "0x" + self.digest.hex(),
            "result": "0x" + self.result.hex(),
            "callback": self.callback,
            "callback_ok": self.callback_ok,
        }
        if self.value is not None:
            out |= {
                "kind": "public",
                "values": self.value.texts(),
                "values_scaled": list(self.value.values),
                "decimals": self.value.decimals,
                "count": self.value.count,
            }
        if self.private is not None:
            out |= {
                "kind": "private",
                "blob_digest": "0x" + self.private.blob_digest.hex(),
                "locator": self.private.locator,
            }
        return out

    def line(self) -> str:
        """One human-readable line."""
        head = f"task {self.task_id} ({self.program or '?'}) {self.status.name.lower()}: "
        if self.value is not None:
            body = f"{self.value} (over {self.value.count} values, {self.value.decimals} decimals)"
        elif self.private is not None:
            body = (
                f"private result, blob 0x{self.private.blob_digest.hex()[:16]}… at "
                f"{self.private.locator[:28]}…"
            )
        else:
            body = f"{len(self.result)} undecoded bytes"
        tail = f"; digest 0x{self.digest.hex()[:16]}…"
        if self.callback:
            state = {True: "delivered", False: "FAILED", None: "not called"}[self.callback_ok]
            tail += f"; callback {self.callback} {state}"
        return head + body + tail


def _attested(chain: ChainClient, task_id: int) -> tuple[TaskInfo, TaskStatus, bytes, bytes]:
    info = chain.task_info(task_id)
    if info.status == TaskStatus.NONE:
        raise UnknownTask(task_id)
    status, digest, result = chain.result_of(task_id)
    status = TaskStatus(status)
    if status not in ATTESTED:
        raise ResultNotAvailable(task_id, status.name.lower())
    if result_digest(result) != digest:
        raise ResultMismatch(task_id, "0x" + digest.hex(), "0x" + result_digest(result).hex())
    return info, status, digest, result


def read_result(chain: ChainClient, task_id: int) -> AttestedResult:
    """Read a public aggregate's report and re-check its digest before decoding."""
    _, status, digest, result = _attested(chain, task_id)
    return AttestedResult(
        task_id, status, digest, result, AggregateResult.decode(result), status in FINAL
    )


def read(chain: ChainClient, task_id: int) -> OracleResult:
    """Any task's attested result (public or private), decoded and checked."""
    from dnode.scheduler.programs import program_by_id

    info, status, digest, result = _attested(chain, task_id)
    prog = program_by_id(info.program_id)
    value: AggregateResult | None = None
    private: PrivateResult | None = None
    if info.capability == HE:
        try:
            private = PrivateResult(*decode_private(result))
        except OracleError as e:
            raise OracleError(f"task {task_id}: {e}") from None
    else:
        value = AggregateResult.decode(result)
    return OracleResult(
        task_id=task_id,
        program=prog.name if prog else None,
        status=status,
        digest=digest,
        result=result,
        final=status in FINAL,
        value=value,
        private=private,
        callback=info.callback,
        callback_ok=info.callback_ok,
    )


def watch(
    chain: ChainClient,
    *,
    from_block: int | None = None,
    poll: float = 1.0,
    timeout: float | None = None,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[OracleResult]:
    """Yield each task's result once it is final (FINALIZED, or OVERTURNED by a dispute), in
    chain order, from ``from_block`` (default: the next block) on. Stops after ``limit``
    results or ``timeout`` seconds (None: until the caller stops iterating)."""
    start = time.monotonic()
    nxt = chain.latest_block() + 1 if from_block is None else from_block
    seen = 0
    while True:
        latest = chain.latest_block()
        if latest >= nxt:
            for ev in chain.events(nxt, latest):
                final = ev.name == "TaskFinalized" or (
                    ev.name == "DisputeResolved" and ev.args.get("outcome") == REVERSED
                )
                if not final:
                    continue
                yield read(chain, int(ev.args["task_id"]))
                seen += 1
                if limit is not None and seen >= limit:
                    return
            nxt = latest + 1
        if timeout is not None and time.monotonic() - start >= timeout:
            return
        sleep(poll)
