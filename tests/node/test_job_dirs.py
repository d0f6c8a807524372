"""A party's job directory holds its shares: it lives under the node's state dir, not the
shared /tmp, and what a killed node (kill -9) left behind is swept when the node starts again."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import cast

from eth_account import Account

from dnode.contracts.client import ChainClient
from dnode.node.config import NodeConfig
from dnode.node.mpc.executor import JOB_PREFIX, SubprocessExecutor, sweep_stale_jobs
from dnode.node.task.context import NodeContext
from tests.fakes.chain import FakeChain, FakeLedger
from tests.fakes.transport import FakeNetwork


def _leftover(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "job.json").write_text('{"shares": [1, 2, 3]}')
    return d


def test_stale_job_dirs_are_swept_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "mpc-jobs"
    old = _leftover(root, f"{JOB_PREFIX}7-0-abc")
    keep = root / "operator-notes.txt"
    keep.write_text("not ours")
    assert sweep_stale_jobs(root) == 1
    assert not old.exists() and keep.exists()
    assert sweep_stale_jobs(tmp_path / "missing") == 0


def test_a_restarted_node_sweeps_what_a_killed_one_left(tmp_path: Path) -> None:
    acct = Account.create()
    cfg = NodeConfig(home=tmp_path / "n", account=acct, auto_finalize=False)
    root = cfg.state_dir / "mpc-jobs"
    old = _leftover(root, f"{JOB_PREFIX}3-1-xyz")  # a party's files after kill -9 of its node
    net = FakeNetwork()
    chain = cast(ChainClient, FakeChain(FakeLedger(), acct.address))
    ctx = NodeContext(cfg, chain, net.host("peer-a"))
    assert not old.exists()
    ex = ctx.executor
    assert isinstance(ex, SubprocessExecutor) and ex.workroot == root
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
