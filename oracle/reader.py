"""Off-chain reader of attested results: what a requester or an off-chain dApp trusts.

Reads every task, plain or consumer (a plain task's result bytes live only in its
ResultReported event; a consumer task's are also stored for the contract's ``result_of``),
re-checks the bytes against the attested digest and decodes them with the codec the task's
program names (:mod:`oracle.codecs`): a public result as
``abi(int256[] values, uint8 decimals, uint256 count)``, reshaped and labelled when the
task's params are known; a private (HE) result as its blob digest and locator (the
ciphertext itself never goes on-chain).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dnode.contracts.client import ChainClient, TaskInfo, TaskStatus
from dnode.oracle.codecs import Decoded, PrivateResult, TensorResult, codec
from dnode.oracle.encoding import AggregateResult, result_digest
from dnode.oracle.errors import OracleError, ResultMismatch, ResultNotAvailable, UnknownTask
from dnode.scheduler.programs import TaskParams, program_by_id

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
class OracleResult:
    """One task's attested result, decoded, with how it reached its consumer (if any)."""

    task_id: int
    program: str | None
    status: TaskStatus
    digest: bytes
    result: bytes
    final: bool
    decoded: Decoded | None = None  # through the program's codec
    callback: str | None = None
    callback_ok: bool | None = None  # None: no call made (yet)
    # the differential-privacy guarantee of a noisy result (scheduler.dp; from the params)
    guarantee: dict[str, Any] | None = None

    @property
    def value(self) -> AggregateResult | None:
        """The public values (None for a private result)."""
        return self.decoded.value if isinstance(self.decoded, TensorResult) else None

    @property
    def private(self) -> PrivateResult | None:
        return self.decoded if isinstance(self.decoded, PrivateResult) else None

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
        if self.decoded is not None:
            out |= self.decoded.to_json()
        if self.guarantee is not None:
            out["dp"] = self.guarantee
        return out

    def line(self) -> str:
        """One human-readable line."""
        head = f"task {self.task_id} ({self.program or '?'}) {self.status.name.lower()}: "
        if self.decoded is not None:
            body = self.decoded.line()
        else:
            body = f"{len(self.result)} undecoded bytes"
        tail = f"; digest 0x{self.digest.hex()[:16]}…"
        if self.guarantee is not None:
            g = self.guarantee
            tail += f"; noisy: ({g['epsilon']}, {g['delta']})-DP"
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


def read(chain: ChainClient, task_id: int, params: TaskParams | None = None) -> OracleResult:
    """Any task's attested result, checked and decoded by its program's codec; with the
    task's ``params`` (public, held by the requester) the values are reshaped and labelled."""
    info, status, digest, result = _attested(chain, task_id)
    prog = program_by_id(info.program_id)
    if params is not None and params.digest != info.params_digest:
        raise OracleError(f"task {task_id}: the given params are not the task's (digest differs)")
    shape, labels = prog.layout(params) if prog and params else ((), ())
    try:
        name = prog.codec if prog else "tensor"
        if params is not None and params.result_key:  # sealed to the requester: a digest
            name = "private"
        decoded = codec(name).decode(result, shape, labels)
    except OracleError as e:
        raise OracleError(f"task {task_id}: {e}") from None
    return OracleResult(
        task_id=task_id,
        program=prog.name if prog else None,
        status=status,
        digest=digest,
        result=result,
        final=status in FINAL,
        decoded=decoded,
        callback=info.callback,
        callback_ok=info.callback_ok,
        guarantee=prog.guarantee(params) if prog and params else None,
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
