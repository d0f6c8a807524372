"""Issue 13, finding 6 (party side): the party process inherits no secret, sees only its job,
cannot read the node's files, and runs under resource limits; its files are 0600 whatever
the umask.  A probe party (tests/node/probe_party.py) reports what it can reach."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

from dnode.node.errors import MpcError
from dnode.node.mpc.executor import MpcJob, SubprocessExecutor, free_port

PROBE = Path(__file__).with_name("probe_party.py")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _check_confined(seen: dict) -> None:
    assert seen["password"] is None
    assert not [k for k in seen["env"] if k.startswith("DNODE")], seen["env"]
    assert seen["files"] == ["job.json"]
    assert seen["job_mode"] == "0o600"
    assert seen["umask"] == "0o77"
    assert seen["dumpable"] == 0
    assert not seen["secret_readable"], "the party can read the node's files"
    assert not seen["parent_environ_readable"], "the party can read its parent's environment"
    assert not seen["node_environ_readable"], "the party can read the daemon's environment"
    limits = seen["limits"]
    assert limits["RLIMIT_CORE"] == 0
    assert 0 < limits["RLIMIT_AS"] <= 8 << 30
    assert 0 < limits["RLIMIT_NOFILE"] <= 256
    assert 0 < limits["RLIMIT_CPU"] <= 30 + 10 + 31


def test_a_forked_party_is_confined_as_a_spawned_one(tmp_path, monkeypatch, umask_022):
    """The party fork server (started by the executor with a party's environment) forks a
    child that is confined exactly like a fresh party, and holds nothing of the node's."""
    from dnode.node.mpc import executor

    monkeypatch.setenv("DNODE_PASSWORD", "hunter2")
    monkeypatch.setenv("DNODE_RPC_URL", "http://secret-rpc.invalid")
    monkeypatch.setattr(executor, "PARTY_ENTRY", "tests.node.probe_party:forked_main")
    node_db = tmp_path / "home" / "state" / "node.db"
    node_db.parent.mkdir(parents=True)
    node_db.write_text("every share of every task")
    args = {"needs": ["sum"], "probe_secret": str(node_db), "probe_node": os.getpid()}
    job = MpcJob(
        1, "mpc.sum", "dnode.node.engines.mpc.kernels.stats", args, 1, 64, 0,
        [("127.0.0.1", free_port())], 0, [[1, 2]],
    )  # fmt: skip
    ex = SubprocessExecutor(workroot=tmp_path / "jobs", fork=True)

    async def run() -> str:
        try:
            await ex.run_party(job, timeout=30)
        except MpcError as e:
            return e.detail
        raise AssertionError("the probe party must fail")

    try:
        detail = trio.run(run)
    finally:
        ex.close()
    assert ex.fork, "the party was spawned, not forked"
    assert "PROBE " in detail, detail
    seen = json.loads(detail.split("PROBE ", 1)[1])
    assert seen["modules_preloaded"]  # it did come from the fork server
    _check_confined(seen)


def test_the_party_process_is_confined(tmp_path, monkeypatch, umask_022):
    monkeypatch.setenv("DNODE_PASSWORD", "hunter2")
    monkeypatch.setenv("DNODE_RPC_URL", "http://secret-rpc.invalid")
    node_db = tmp_path / "home" / "state" / "node.db"  # stands for the keystore / state db
    node_db.parent.mkdir(parents=True)
    node_db.write_text("every share of every task")
    wrapper = tmp_path / "probe-python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {PROBE} {node_db} "$@"\n')
    wrapper.chmod(0o755)
    job = MpcJob(
        1,
        "mpc.sum",
        "dnode.node.engines.mpc.kernels.stats",
        {"needs": ["sum"]},
        1,
        64,
        0,
        [("127.0.0.1", free_port())],
        0,
        [[1, 2]],
    )

    async def run() -> str:
        try:
            await SubprocessExecutor(python=str(wrapper)).run_party(job, timeout=30)
        except MpcError as e:
            return e.detail
        raise AssertionError("the probe party must fail")

    detail = trio.run(run)
    assert "PROBE " in detail, detail
    seen = json.loads(detail.split("PROBE ", 1)[1])
    _check_confined(seen)
