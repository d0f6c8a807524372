"""Run one MPyC party of a task session as a subprocess, from trio.

The node daemon (trio) calls :func:`run_party` (or an :class:`Executor`) once per task
it is a committee member of.  The party runs in its own OS process
(``python -m node.mpc.party job.json``) because MPyC owns an asyncio event loop, parses
``sys.argv`` at import and keeps module-global runtime state -- none of which can live
inside the daemon.

Addresses: ``MpcJob.parties[index]`` is ``(listen_host_as_seen_by_nobody, listen_port)``
of THIS party; ``parties[j]`` for ``j > index`` is where this party connects to reach
party ``j`` (e.g. a local libp2p forwarder port); ``parties[j]`` for ``j < index`` is
unused by this party (party ``j`` connects to us).  See :mod:`node.mpc.party`.

Pass ``listening=trio.Event()`` to learn when this party's MPyC server accepts
connections; a tunnel delivering peers' connections to it must not dial it earlier
(MPyC's clients never reconnect after an accepted-then-closed connection).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from dnode import IMPORT_ROOT
from dnode.node.errors import CheatingDetectedError, MpcError
from dnode.node.mpc.influence import TableWitness, table_rows
from dnode.node.mpc.isolation import party_env
from dnode.node.mpc.party import CONNECTED_MARKER, EXIT_CHEATING, LISTENING_MARKER
from dnode.node.mpc.sharing import field_modulus

__all__ = ["Executor", "MpcJob", "MpcResult", "SubprocessExecutor", "free_port", "run_party"]

_REPO_ROOT = Path(IMPORT_ROOT)  # what the party process imports dnode from

log = logging.getLogger("dnode.node.mpc")


@dataclass(frozen=True)
class MpcJob:
    task_id: int
    program: str  # the program's name (part of the parties' session fingerprint)
    kernel: str  # dotted module of the kernel (from the local spec registry, never a peer)
    args: dict[str, Any]  # the spec's kernel_args
    width: int  # integers per row; every owner's shares are whole rows
    bit_length: int  # secint(bit_length); shares must be in field_modulus(bit_length)
    index: int  # this party, 0-based
    parties: list[tuple[str, int]]  # one (host, port) per party, in party order
    threshold: int
    shares: list[list[int]]  # per data-owner contribution: this party's shares
    listen_host: str = "127.0.0.1"  # interface this party's MPyC server binds
    checks: bool = True  # malicious-minority checks (node.mpc.malicious); False: semi-honest
    # what each owner's influence witness proves (the spec's declared bounds): its shares end
    # with node.mpc.influence.table_witness, checked inside the MPC; None: no witness
    witness: TableWitness | None = None
    # per owner: node.mpc.commitments.sharing_commitment of its signed per-seat digests;
    # the parties compare them, so an owner that equivocated is named before computing
    commitments: list[bytes] | None = None
    # private result (node.mpc.delivery): the requester's X25519 key, hex; outputs are sealed
    # to it share by share instead of opened
    result_key: str | None = None
    # the field's prime when the program fixes it (spec.field_prime); None: MPyC's rule
    modulus: int | None = None

    @classmethod
    def for_task(
        cls, params: Any, index: int, parties: list[tuple[str, int]], threshold: int,
        shares: list[list[int]], task_id: int = 0, **kw: Any,
    ) -> MpcJob:  # fmt: skip
        """Party ``index``'s job for ``params`` (a TaskParams), built through its program's
        spec as a node builds it: kernel, kernel args, width, field, private result."""
        spec = params.spec
        kw.setdefault("result_key", params.result_key or None)
        kw.setdefault("modulus", params.field_prime)
        return cls(
            task_id, params.program, spec.kernel, spec.kernel_args(params), spec.width(params),
            params.bit_length, index, parties, threshold, shares, **kw,
        )  # fmt: skip

    @property
    def prime(self) -> int:
        return self.modulus or field_modulus(self.bit_length)

    def owner_rows(self) -> list[int]:
        """Each owner's number of table rows (its shares minus its witness)."""
        if self.witness is None:
            return [len(s) // self.width if self.width else 0 for s in self.shares]
        return [table_rows(len(s), self.witness) for s in self.shares]

    @property
    def rows(self) -> int:
        return sum(self.owner_rows())

    def validate(self) -> None:
        """Raise MpcError(task_id, ...) if the job cannot run."""

        def bad(detail: str) -> MpcError:
            return MpcError(self.task_id, f"invalid job: {detail}")

        if not all(p.isidentifier() for p in self.kernel.split(".")):
            raise bad(f"bad kernel module {self.kernel!r}")
        if self.width < 1:
            raise bad(f"bad width {self.width}")
        if self.witness is None and any(len(s) % self.width for s in self.shares):
            raise bad(f"shares are not whole rows of width {self.width}")
        if self.witness is not None and self.witness.width != self.width:
            raise bad(f"witness bounds for {self.witness.width} columns, rows of {self.width}")
        if not 16 <= self.bit_length <= 256:
            raise bad(f"bit_length={self.bit_length} out of range")
        m = len(self.parties)
        if not 0 <= self.index < m:
            raise bad(f"index {self.index} out of range for {m} parties")
        if self.threshold < 0 or 2 * self.threshold >= m:
            raise bad(f"threshold {self.threshold} invalid for {m} parties (need 2t < m)")
        for host, port in self.parties:
            if not host or not isinstance(port, int) or not 0 < port < 65536:
                raise bad(f"bad party address {host!r}:{port!r}")
        p = self.prime
        if self.witness is not None:
            for k, owner in enumerate(self.shares):
                try:
                    table_rows(len(owner), self.witness)
                except ValueError as e:
                    raise bad(f"data owner {k}: {e}") from None
        for owner in self.shares:
            if not all(isinstance(x, int) and 0 <= x < p for x in owner):
                raise bad("a share is not an element of the secint field")

    def to_json(self, output: str, deadline: float | None) -> dict:
        return {
            "task_id": self.task_id,
            "program": self.program,
            "kernel": self.kernel,
            "args": self.args,
            "width": self.width,
            "bit_length": self.bit_length,
            "index": self.index,
            "parties": [f"{h}:{p}" for h, p in self.parties],
            "threshold": self.threshold,
            "shares": self.shares,
            "output": output,
            "modulus": self.prime,
            "listen_host": self.listen_host,
            "deadline": deadline,
            "checks": self.checks,
            "witness": None if self.witness is None else self.witness.to_json(),
            "commitments": None
            if self.commitments is None
            else [c.hex() for c in self.commitments],
            "result_key": self.result_key,
        }


@dataclass(frozen=True)
class MpcResult:
    """What the kernel opened (identical on every party) and the public row count."""

    revealed: dict[str, Any]
    rows: int
    program: str = ""
    modulus: int | None = field(default=None, compare=False)
    # SHA-256 (hex) of every share opened in the session (node.mpc.malicious.Guard):
    # the same at every honest party, unknown to a node that did not take part
    transcript: str | None = field(default=None, compare=False)
    # private result: every seat's sealed box (node.mpc.delivery.Bundle), the same at every
    # honest party; ``revealed`` is then empty
    bundle: bytes | None = field(default=None, compare=False)
    # what this party sent its peers (MPyC's byte count: frames, headers included): a metric
    bytes_sent: int = field(default=0, compare=False)
    # this party's CPU seconds and peak resident memory (bytes; Linux ru_maxrss): metrics
    cpu_seconds: float = field(default=0.0, compare=False)
    peak_rss: int = field(default=0, compare=False)


class Executor(Protocol):
    """What the node needs to run its party of an MPC session (swappable, e.g. in tests).

    ``listening`` (optional) is set once this party's MPyC server accepts connections --
    only then may a tunnel connect to it (see :mod:`node.mpc.party`, "connection pattern").
    """

    async def run_party(
        self, job: MpcJob, *, timeout: float, listening: trio.Event | None = None
    ) -> MpcResult: ...


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (racy by nature: bind it soon)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


_LOG_CAP = 64 * 1024  # keep the tail of a party's output only


JOB_PREFIX = "dnode-mpc-"


def sweep_stale_jobs(workroot: Path) -> int:
    """Delete the job dirs a previous run of this node left (a kill -9 skips the ``finally``
    that removes them): each holds a party's shares. Call it before any party starts (the
    state dir's lock guarantees no other instance runs). Returns how many were removed."""
    if not workroot.is_dir():
        return 0
    gone = 0
    for d in workroot.iterdir():
        if d.name.startswith(JOB_PREFIX) and d.is_dir() and not d.is_symlink():
            shutil.rmtree(d, ignore_errors=True)
            gone += 1
    return gone


class SubprocessExecutor:
    """Runs ``python -m node.mpc.party`` in a fresh private temp dir per job."""

    def __init__(
        self,
        python: str = sys.executable,
        *,
        grace: float = 10.0,
        party_args: tuple[str, ...] = ("-m", "dnode.node.mpc.party"),
        workroot: Path | None = None,
    ) -> None:
        self.python = python
        self.grace = grace  # the party's own deadline = timeout + grace (orphan guard)
        self.party_args = party_args  # the job file path is appended
        # where job dirs (the party's shares) live: a node passes <state>/mpc-jobs, swept at
        # its start; None: the system temp dir (tests, benchmarks)
        self.workroot = workroot
        if workroot is not None:
            workroot.mkdir(mode=0o700, parents=True, exist_ok=True)
            workroot.chmod(0o700)

    async def run_party(
        self, job: MpcJob, *, timeout: float, listening: trio.Event | None = None
    ) -> MpcResult:
        job.validate()
        if not (timeout > 0 and math.isfinite(timeout)):
            raise MpcError(job.task_id, f"invalid timeout {timeout!r}")
        workdir = tempfile.mkdtemp(
            prefix=f"{JOB_PREFIX}{job.task_id}-{job.index}-",
            dir=str(self.workroot) if self.workroot is not None else None,
        )
        try:
            return await self._run_in(job, timeout, Path(workdir), listening)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    run = run_party  # alias

    async def _run_in(
        self, job: MpcJob, timeout: float, wd: Path, listening: trio.Event | None
    ) -> MpcResult:
        job_path, out_path = wd / "job.json", wd / "result.json"
        payload = json.dumps(job.to_json(str(out_path), timeout + self.grace))

        def write_job() -> None:
            fd = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)

        await trio.to_thread.run_sync(write_job)
        env = party_env(wd, _REPO_ROOT)  # nothing of the node's environment (secrets)
        cmd = [self.python, *self.party_args, str(job_path)]
        out = bytearray()
        connected = False

        async def read_output(stream: trio.abc.ReceiveStream) -> None:
            nonlocal out, connected
            async for chunk in stream:
                out += chunk
                if len(out) > _LOG_CAP:
                    del out[: len(out) - _LOG_CAP]
                text = out.decode("utf-8", "replace")
                if listening is not None and LISTENING_MARKER in text:
                    listening.set()
                if CONNECTED_MARKER in text:
                    connected = True

        proc = await trio.lowlevel.open_process(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(wd),
        )
        try:
            async with trio.open_nursery() as nursery:
                assert proc.stdout is not None
                nursery.start_soon(read_output, proc.stdout)
                with trio.move_on_after(timeout) as scope:
                    await proc.wait()
                if scope.cancelled_caught:
                    proc.kill()  # EOF on the pipe then ends read_output
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
        log_text = out.decode("utf-8", "replace")
        if scope.cancelled_caught:
            tail = [ln for ln in log_text.splitlines() if ln.strip()][-3:]
            log.info("task %d: party %d's last output: %s", job.task_id, job.index, tail)
            if connected:
                what = "(all parties connected, computation stalled)"
            else:
                what = "waiting for parties"
            detail = f"timed out after {timeout:g} s {what}"
            raise MpcError(job.task_id, detail, connected=connected)
        if proc.returncode == EXIT_CHEATING:
            last = _last_line(log_text)
            reason = last.split(": ", 2)[-1] if last else "cheating detected"
            owner = None
            if "(data owner " in reason:
                owner = int(reason.split("(data owner ", 1)[1].split(")", 1)[0])
            raise CheatingDetectedError(job.task_id, reason, owner)
        if proc.returncode != 0:
            last = _last_line(log_text) or "(no output)"
            raise MpcError(
                job.task_id, f"party {job.index} exited with {proc.returncode}: {last}",
                connected=connected,
            )  # fmt: skip
        try:
            res = json.loads(out_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise MpcError(
                job.task_id, f"party {job.index} wrote no result: {e}", connected=connected
            ) from None
        if res.get("rows") != job.rows or not isinstance(res.get("revealed"), dict):
            raise MpcError(job.task_id, "party result does not match the job")
        if (job.result_key is not None) != bool(res.get("bundle")):
            raise MpcError(job.task_id, "party result does not match the job (private result)")
        return MpcResult(
            revealed=res["revealed"],
            rows=int(res["rows"]),
            program=job.program,
            modulus=int(res["modulus"]),
            transcript=res.get("transcript"),
            bundle=bytes.fromhex(res["bundle"]) if res.get("bundle") else None,
            bytes_sent=int(res.get("bytes_sent") or 0),
            cpu_seconds=float(res.get("cpu_seconds") or 0.0),
            peak_rss=int(res.get("peak_rss") or 0),
        )


async def run_party(
    job: MpcJob, *, timeout: float, listening: trio.Event | None = None
) -> MpcResult:
    """Run this node's party of ``job``; MpcError on timeout, failure or bad job."""
    return await SubprocessExecutor().run_party(job, timeout=timeout, listening=listening)
