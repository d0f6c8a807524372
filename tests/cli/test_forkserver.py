"""The fork server runs each dnode command as its own process, as a fresh interpreter would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnode.cli.forkserver import ForkServer, ForkServerError


@pytest.fixture(scope="module")
def server() -> Iterator[ForkServer]:
    fs = ForkServer(dict(os.environ))
    try:
        yield fs
    finally:
        fs.close()


def test_output_and_exit_codes_match_a_fresh_process(server: ForkServer) -> None:
    for argv in (["--help"], ["no-such-command"], ["task", "post", "--bogus"]):
        fresh = subprocess.run(
            [sys.executable, "-m", "dnode.cli", *argv], capture_output=True, timeout=60
        )
        forked = server.run(argv, timeout=60)
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            fresh.returncode,
            fresh.stdout,
            fresh.stderr,
        ), argv


def test_each_command_gets_its_own_process_environment_and_directory(
    server: ForkServer, tmp_path: Path
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("dev-only-password")
    env = dict(os.environ, DNODE_HOME=str(tmp_path / "home"))
    made = server.run(["--json", "--password-file", str(pw), "account", "new"], env, 60)
    assert made.returncode == 0, made.stderr
    listed = server.run(["--json", "account", "list"], env, 60)
    address = json.loads(made.stdout.splitlines()[-1])["address"]
    assert address.lower() in listed.stdout.decode().lower()  # the env we passed, not ours
    assert (
        not (Path.home() / ".dnode" / "keystore").exists()
        or address.lower() not in str(list((Path.home() / ".dnode" / "keystore").iterdir())).lower()
    )
    p = server.spawn(["--help"], env)
    assert p.pid not in (0, os.getpid())
    assert p.wait(30) == 0 and p.stdout is not None and b"Usage: dnode" in p.stdout.read()
    with pytest.raises(ProcessLookupError):  # reaped by the server: no zombie left behind
        os.kill(p.pid, 0)


def test_a_command_that_outlives_its_timeout_is_killed(server: ForkServer, tmp_path: Path) -> None:
    # `dnode chain` serves until stopped: the timeout must kill it and say so
    with pytest.raises(subprocess.TimeoutExpired):
        server.run(["chain", "--port", "0"], timeout=3)
    p = server.spawn(["chain", "--port", "0"])
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) is not None


def test_an_environment_that_acts_at_interpreter_start_is_refused(server: ForkServer) -> None:
    env = dict(os.environ, PYTHONPATH="/nonexistent-site")
    with pytest.raises(ForkServerError):
        server.run(["--help"], env, 30)


def test_children_start_with_a_fresh_interpreters_signal_dispositions(server: ForkServer) -> None:
    # a forked child that kept SIGPIPE at its default died silently on the first write to a
    # closed socket (a node's tunnel, the devnet answering a client that hung up)
    fresh = subprocess.Popen([sys.executable, "-m", "dnode.cli", "chain", "--port", "0"])
    forked = server.spawn(["chain", "--port", "0"])
    pipe = 1 << (signal.SIGPIPE - 1)
    sigint = 1 << (signal.SIGINT - 1)  # inherited: a test runner's worker may ignore it
    try:
        deadline = time.monotonic() + 120
        while not all(_ignored(p.pid) & pipe for p in (fresh, forked)):  # both initialised
            assert time.monotonic() < deadline and forked.poll() is None, _ignored(forked.pid)
            time.sleep(0.2)
        assert _ignored(forked.pid) & ~sigint == _ignored(fresh.pid) & ~sigint
    finally:
        for p in (fresh, forked):
            p.terminate()
            p.wait(30)


def _ignored(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(ln for ln in status if ln.startswith("SigIgn")).split()[1], 16)
