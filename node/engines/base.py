"""The engine interface: how the node runs any program without knowing which one.

The node's task stages call exactly three things, for every program::

    engine = engine_for(spec)                          # node.engines; spec: scheduler.programs
    prepared = engine.prepare(spec, params, task_dir)  # validate; EngineRefused: do not sit
    raw = await engine.compute(prepared, session)      # trio; waits for inputs, runs the kernel
    result = engine.encode_result(spec, raw)           # the bytes every member signs and reports

plus two attributes: ``engine.capability`` ("mpc" | "he"; only engine and spec code may look at
it) and ``spec.supports_rerun`` (a disputed task can be re-executed from stored inputs).

A :class:`ComputeSession` carries what the node owns and the engine borrows: the committee
(peers in seat order, this node's seat), the transport for tunnels and blobs, the inputs the
owners delivered (live: the node keeps adding to them until ``inputs_complete``), the report
deadline in chain time and a clock for it, and engine services (the MPC party executor, the
HE blob store). ``started()`` tells the node the computation began (late inputs are refused).

Engines: ``node.engines.mpc.engine.MpcEngine`` (MPyC parties, kernels under
``node.engines.mpc.kernels``) and ``node.engines.he.engine.HeEngine`` (TenSEAL, kernels in
``node.he.ops``). Adding a program never touches this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from dnode.node.errors import NodeError
from dnode.node.transport import Transport
from dnode.scheduler.programs.params import TaskParams
from dnode.scheduler.programs.registry import ProgramSpec


class Flag(Protocol):
    """A condition an engine can test and wait for (a ``trio.Event`` is one; the task steps
    lend conditions over the task runtime)."""

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


class _Never:
    def is_set(self) -> bool:
        return False

    async def wait(self) -> None:
        await trio.sleep_forever()


class EngineRefused(NodeError):
    """This node will not run the task (its parameters fail the engine's checks)."""

    def __init__(self, task_id: int, detail: str) -> None:
        self.task_id, self.detail = task_id, detail
        super().__init__(f"task {task_id}: refused: {detail}")


@dataclass(frozen=True)
class PreparedTask:
    """A validated task, ready to compute; ``plan`` is engine-specific (e.g. an HeTask)."""

    task_id: int
    spec: ProgramSpec
    params: TaskParams
    task_dir: Path
    plan: Any = None


@dataclass
class ComputeSession:
    """What the node lends an engine for one committee's computation."""

    task_id: int
    round: int
    seat: int
    peers: list[str]  # committee members' peer ids, in seat order
    deadline: int  # chain time by which the result must be reported
    host: Transport
    inputs: dict[str, Any]  # data owner (lower-case address) -> its delivery to this seat
    inputs_complete: Flag
    chain_now: Callable[[], Awaitable[int]]
    started: Callable[[], None] = lambda: None
    abort: Flag = field(default_factory=_Never)  # e.g. a member declined: no retry
    restored: bool = False  # the seat was held before this process started
    attempt_timeout: float = 120.0  # longest single attempt (node config)
    executor: Any = None  # MPC: node.mpc.executor.Executor
    blobs: Any = None  # HE: node.he_worker.HeWorker (blob store, fetch from peers)
    observe: Callable[[str, float], None] = lambda name, seconds: None
    namespace: str = ""  # "<chain id>:<contract>": keeps tunnel keys apart across deployments


@dataclass(frozen=True)
class RawResult:
    """What an engine computed, before encoding; ``record`` is kept in the task directory."""

    prepared: PreparedTask
    data: Any
    record: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    capability: str  # "mpc" | "he" -- only engine/spec code may look at it

    def prepare(self, spec: ProgramSpec, params: TaskParams, task_dir: Path) -> PreparedTask: ...

    async def compute(self, prepared: PreparedTask, session: ComputeSession) -> RawResult: ...

    def encode_result(self, spec: ProgramSpec, raw: RawResult) -> bytes: ...
