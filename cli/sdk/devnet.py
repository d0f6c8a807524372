"""A local devnet for notebooks and tutorials: a chain, the contracts and staked nodes, each
its own OS process (as ``dnode demo`` runs them), plus funded accounts to act as requesters
and data owners. Dev keys only: never use them on a real chain.

``DNODE_DEVNET`` (JSON: ``rpc_url``, ``manifest``, ``bootstrap``, ``keys``, ``workdir``)
attaches to a devnet that is already running instead (how the test suite runs the quickstart
notebook against its cluster).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnode.cli.devcluster import DEV_PASSWORD
from dnode.cli.sdk.client import Client, connect
from dnode.cli.sdk.errors import SdkError


class LocalDevnet:
    """A running devnet and the accounts handed out on it (see :func:`start`)."""

    def __init__(
        self,
        rpc_url: str,
        manifest: Path,
        bootstrap: Sequence[str],
        workdir: Path,
        keys: Sequence[str] = (),
        cluster: Any = None,
    ) -> None:
        self.rpc_url, self.manifest, self.workdir = rpc_url, Path(manifest), Path(workdir)
        self.bootstrap = list(bootstrap)
        self._keys = list(keys)  # attached: the dev keys reserved for this user
        self._cluster = cluster  # started here: the DevCluster that owns the processes

    def __repr__(self) -> str:
        return f"<LocalDevnet {self.rpc_url}, {len(self.bootstrap)} node(s)>"

    def account(self, name: str) -> Client:
        """A new funded user with its own home and encrypted keystore, connected."""
        home = self.workdir / name
        if self._cluster is not None:
            self._cluster.member(name)
        else:
            if not self._keys:
                raise SdkError("no dev account left on this devnet")
            from dnode.node import keystore

            keystore.save_key(home / "keystore", self._keys.pop(0), DEV_PASSWORD)
        return connect(self.rpc_url, self.manifest, home=home, password=DEV_PASSWORD,
                       bootstrap=self.bootstrap)  # fmt: skip

    def stop(self) -> None:
        """Stop the processes this devnet started (an attached one keeps running)."""
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def __enter__(self) -> LocalDevnet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(nodes: int = 3, workdir: str | Path | None = None, accounts: int = 12) -> LocalDevnet:
    """Start a devnet (embedded chain, contracts, ``nodes`` staked nodes), or attach to the one
    ``DNODE_DEVNET`` describes. Stop it with ``.stop()``."""
    env = os.environ.get("DNODE_DEVNET")
    if env:
        d = json.loads(env)
        return LocalDevnet(d["rpc_url"], Path(d["manifest"]), d["bootstrap"], Path(d["workdir"]),
                           d.get("keys", []))  # fmt: skip
    from dnode.cli.devcluster import DevCluster

    wd = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="dnode-devnet-"))
    cluster = DevCluster(wd, challenge_period=4, accounts=accounts)
    try:
        cluster.start_chain()
        cluster.deploy()
        cluster.start_nodes([f"node-{i}" for i in range(1, nodes + 1)])
    except BaseException:
        cluster.stop()
        raise
    return LocalDevnet(cluster.rpc_url, cluster.manifest, cluster.bootstrap(nodes), wd,
                       cluster=cluster)  # fmt: skip
