"""A chain older than Cancun (ganache stops at Shanghai): `dnode deploy` says in one line what
it needs, before compiling or sending anything (it used to fail with "internal error")."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnode.cli.devcluster import anvil_path, free_port
from dnode.contracts.client import connect
from dnode.contracts.deploy import chain_evm

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("hardfork", "found"), [("shanghai", "shanghai"), ("paris", "paris")])
def test_deploy_on_a_pre_cancun_chain_is_refused_in_one_line(
    tmp_path: Path, hardfork: str, found: str
) -> None:
    port = free_port()
    anvil = subprocess.Popen(
        [str(anvil_path()), "--port", str(port), "--hardfork", hardfork],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "anvil did not start"
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        assert chain_evm(connect(url)).startswith(found)
        cmd = [sys.executable, "-m", "dnode.cli", "--rpc-url", url, "--home", str(tmp_path)]
        r = subprocess.run(
            [*cmd, "deploy", "--dev-account", "0"], capture_output=True, text=True, cwd=REPO
        )
        assert r.returncode != 0
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"the chain runs {found}" in lines[0] and "cancun or later" in lines[0]
        assert not (tmp_path / "deployment.json").exists()
    finally:
        anvil.terminate()
        anvil.wait(10)


def test_the_devnet_runs_cancun(chain) -> None:  # noqa: ANN001 - the conftest fixture
    assert chain_evm(chain.w3) == "cancun"
