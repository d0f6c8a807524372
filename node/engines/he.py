"""The HE engine: TenSEAL evaluation in an isolated child process (``node.he_worker``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnode.node.he import HeTask
from dnode.node.task.context import Session
from dnode.scheduler.programs import Program, TaskParams


@dataclass(frozen=True)
class HePrepared:
    params: TaskParams
    task: HeTask
    task_dir: Path


@dataclass(frozen=True)
class HeOutput:
    report: bytes  # abi.encode(result digest, locator): what the committee signs
    details: dict[str, Any]

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in self.details.items() if k != "result"}


class HeEngine:
    def prepare(self, spec: Program, params: TaskParams, task_dir: Path) -> HePrepared:
        # HeError (a NodeError) when the parameters are insecure, too shallow or malformed
        return HePrepared(params, HeTask.from_task_params(params), task_dir)

    async def compute(self, prepared: HePrepared, session: Session) -> HeOutput:
        ctx, rt = session.ctx, session.rt
        t0 = time.monotonic()
        report, record = await ctx.he.compute(rt, prepared.params, session.peers, prepared.task_dir)
        ctx.metrics.observe("he_seconds", time.monotonic() - t0)
        return HeOutput(report, record)

    def encode_result(self, spec: Program, raw: HeOutput) -> bytes:
        return raw.report
