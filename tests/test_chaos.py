"""Opt-in chaos soak (``pytest -m soak tests/test_chaos.py``): nodes SIGKILLed and restarted
while MPC tasks run; money, signatures and nonces must come out intact.

The full run (5 nodes, 20 tasks, a kill every ~30 s) is ``scripts/chaos.py``; this is the same
code with small numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.soak
ROOT = Path(__file__).resolve().parents[1]


def test_chaos_small(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "chaos.py"), "--json"]
    cmd += ["--nodes", "4", "--tasks", "4", "--kill-interval", "20", "--concurrency", "2"]
    cmd += ["--seed", "7", "--workdir", str(tmp_path / "chaos"), "--max-wall", "1500"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=1800, cwd=ROOT)
    lines = r.stdout.decode().strip().splitlines()
    assert lines, r.stderr.decode()[-3000:]
    report = json.loads(lines[-1])
    assert report["kills"] >= 1 and report["restarts"] == report["kills"]
    assert report["all_settled"], report
    assert report["tasks_posted"] == 4
    assert report["tasks_finalized"] + report["tasks_refunded"] == 4
    assert report["tasks_finalized_correct"] == report["tasks_finalized"]
    assert report["balance_invariant_ok"], report
    assert report["conflicting_signatures"] == 0
    assert report["nonce_gaps"] == 0, report["nonce_gaps_per_node"]
    assert r.returncode == 0
