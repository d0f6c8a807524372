"""The same end-to-end scenario against anvil: dnode needs nothing but standard JSON-RPC."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnode.cli.devcluster import DevCluster, anvil_path
from tests.test_e2e import run_mpc_mean

pytestmark = pytest.mark.slow


def test_mpc_mean_end_to_end_on_anvil(tmp_path: Path) -> None:
    anvil_path()  # fails (not skips) when missing: scripts/test.sh installs it
    run_mpc_mean(DevCluster(tmp_path, engine="anvil", challenge_period=4))
