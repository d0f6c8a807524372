"""The README's by-hand section, as scripts/by_hand.sh runs it: separate `dnode` processes for
the chain, three nodes, two data owners and a requester, from `dnode chain` to the result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_readme_by_hand_section_runs_as_written(tmp_path: Path) -> None:
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "by_hand.sh"), str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    assert "by_hand: task 1 mean 30" in r.stdout, r.stdout[-2000:]
    # every step printed as the README writes it
    steps = ("dnode chain", "dnode deploy", "account import", "stake --amount 2ether")
    steps += ("task post --program mpc.mean", "task contribute 1", "task result 1 --wait")
    for step in steps:
        assert step in r.stderr, step
