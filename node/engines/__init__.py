"""Compute engines: the MPC and HE ways to run a program (the interface: node.engines.base).

``engine_for(spec)`` is the only place that maps a program's capability to its engine."""

from __future__ import annotations

from dnode.node.engines.base import Engine, EngineRefused
from dnode.node.engines.he.engine import HeEngine
from dnode.node.engines.mpc.engine import MpcEngine
from dnode.scheduler.programs.registry import ProgramSpec

ENGINES: dict[str, Engine] = {e.capability: e for e in (MpcEngine(), HeEngine())}


def engine_for(spec: ProgramSpec) -> Engine:
    """The engine that runs ``spec`` (one instance per capability per process)."""
    try:
        return ENGINES[spec.capability]
    except KeyError:
        raise EngineRefused(0, f"no engine for capability {spec.capability!r}") from None
