"""A DP task's MPC attempt is not retried once its parties connected (issue 18): the kernel
may already have opened its noisy values, and a retry with fresh randomness would open a
second, independent noisy release of the same statistics that nobody paid for. The round
fails instead (the task is refunded after formation: datasets.vy keeps the charge). An exact
task is retried as before; an attempt that failed before its parties connected is retried."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from dnode.node.engines.base import PreparedTask
from dnode.node.engines.mpc import engine as E
from dnode.node.errors import MpcError
from dnode.scheduler.programs import Column, TaskParams

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
)
A = Column("a", "int", 0, Fraction(0), Fraction(100))


class Retried(Exception):
    pass


def _run(params: TaskParams, connected: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    eng = E.MpcEngine()

    async def attempt(*a: Any) -> Any:
        raise MpcError(7, "party 1 exited with 1: connection lost", connected=connected)

    async def await_slot(*a: Any) -> Any:
        raise Retried

    monkeypatch.setattr(eng, "_attempt", attempt)
    monkeypatch.setattr(eng, "_await_slot", await_slot)
    monkeypatch.setattr(eng, "_accept_tunnels", lambda *a: None)
    monkeypatch.setattr(E, "enforce_min_aggregation", lambda *a: None)
    monkeypatch.setattr(E, "values_per_owner", lambda *a: None)

    async def main() -> str:
        done = trio.Event()
        done.set()
        s = SimpleNamespace(
            task_id=7, round=0, namespace="n", restored=False, inputs_complete=done, inputs={},
            attempt_timeout=30.0, host=SimpleNamespace(remove_tunnel_target=lambda k: None),
        )  # fmt: skip
        prepared = PreparedTask(7, params.spec, params, None)  # type: ignore[arg-type]
        try:
            await eng._run(prepared, s, E._Party())  # type: ignore[arg-type]
        except Retried:
            return "retried"
        except MpcError as e:
            return e.detail
        return "no error"

    return trio.run(main)


def test_a_dp_attempt_is_not_retried_once_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    dp = TaskParams("mpc.mean", OWNERS, columns=(A,), args={"epsilon": "1"})
    exact = TaskParams("mpc.mean", OWNERS, columns=(A,))
    got = _run(dp, True, monkeypatch)
    assert "a DP attempt is not retried once its parties connected" in got
    assert _run(dp, False, monkeypatch) == "retried"  # never connected: nothing was opened
    assert _run(exact, True, monkeypatch) == "retried"
