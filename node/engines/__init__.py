"""Compute engines behind one seam (``base.Engine``): MPC (MPyC parties) and HE (TenSEAL)."""

from __future__ import annotations

from dnode.node.engines.base import Engine
from dnode.node.engines.he import HeEngine
from dnode.node.engines.mpc import MpcEngine
from dnode.node.errors import NodeError
from dnode.scheduler.programs import CAP_HE, CAP_MPC, Program

ENGINES: dict[int, Engine] = {CAP_MPC: MpcEngine(), CAP_HE: HeEngine()}


def engine_for(spec: Program) -> Engine:
    try:
        return ENGINES[spec.capability]
    except KeyError:
        raise NodeError(f"no engine runs capability {spec.capability} ({spec.name})") from None
