"""The dev cluster's fork server: ``dnode`` commands and nodes without their import cost.

A ``dnode`` command spends ~1.2 s of CPU importing web3, eth-account (which pulls py_ecc's
pairing tables) and libp2p before it does anything; a test cluster or the demo runs hundreds
of commands and restarts nodes.  This server (:mod:`dnode.node.forkserver`) imports all of
that once and forks one child per command or node, which runs exactly as
``python -m dnode.cli ARGS`` would.  Used by :class:`dnode.cli.devcluster.DevCluster`;
``DNODE_FORKSERVER=0`` spawns plain processes.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from dnode.node.forkserver import ForkedProcess, ForkServerError, enabled
from dnode.node.forkserver import ForkServer as _ForkServer

__all__ = ["ForkServer", "ForkServerError", "ForkedProcess", "enabled", "load_commands"]

#: modules every command or node needs; imported once in the server
PRELOAD = (
    "libp2p",  # first: its import resets the "libp2p" logger (see cli/node.py)
    "dnode.cli.main",
    "dnode.contracts.client",
    "dnode.node.daemon",
    "dnode.node.peer_client",
    "dnode.scheduler.programs",
    # every program family (sqlglot, numpy, ...): `task post`/`result` and the nodes look up
    # programs, and each child would otherwise import the families itself (~0.3 s CPU each)
    "dnode.scheduler.programs.registry:discover",
    "dnode.cli.forkserver:load_commands",
)


def load_commands() -> None:
    """The CLI loads a command's module on use: load them all in the server."""
    from dnode.cli.main import COMMANDS

    for module in sorted({module for module, _, _ in COMMANDS.values()}):
        importlib.import_module(module)


class ForkServer(_ForkServer):
    """A fork server whose children run ``dnode ARGV``."""

    def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
        super().__init__(env, log, entry="dnode.cli.main:main", preload=PRELOAD, argv0="dnode")
