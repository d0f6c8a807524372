"""The README's by-hand section, as scripts/by_hand.sh runs it: separate `dnode` processes for
the chain, three nodes, two data owners and a requester, from `dnode chain` to the result."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_readme_by_hand_section_runs_as_written(tmp_path: Path) -> None:
    # the script's HOME is a fresh directory; the compiled contracts come from the runner's
    # cache (keyed by the sources' digest), as for a user who compiled them before: a cold
    # compile is ~15 s of CPU that every other cluster of the suite already paid
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "by_hand.sh"), str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=850,
        env={**os.environ, "XDG_CACHE_HOME": cache},
    )
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    assert "by_hand: task 1 mean 30" in r.stdout, r.stdout[-2000:]
    # every step printed as the README writes it
    steps = ("dnode chain", "dnode deploy", "account import", "stake --amount 2ether")
    steps += ("task post --program mpc.mean", "task contribute 1", "task result 1 --wait")
    for step in steps:
        assert step in r.stderr, step
