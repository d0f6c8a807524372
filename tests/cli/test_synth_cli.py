"""``dnode synth`` refuses what it cannot run BEFORE touching the chain (none runs here): a
non-zero exit and one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _dnode(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("DNODE_BOOTSTRAP", None)
    cmd = [sys.executable, "-m", "dnode.cli", "--home", str(tmp / "home"),
           "--rpc-url", "http://127.0.0.1:9", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "name the datasets"),
        (["--datasets", "1"], "two or more datasets"),
        (["--datasets", "1,x"], "comma-separated dataset ids"),
        (["--datasets", "1,2", "--epsilon", "1"], "--schema FILE"),
        (["--datasets", "1,2", "--schema", "{s}"], "--epsilon (or --rho)"),
        (["--datasets", "1,2", "--schema", "{s}", "--epsilon", "1"], "--out FILE"),
    ],
)  # fmt: skip
def test_refusals_exit_non_zero_with_one_line(tmp_path: Path, args: list[str], text: str) -> None:
    s = tmp_path / "people.json"
    s.write_text(json.dumps({"table": "people", "columns": [{"name": "id", "type": "id"}]}))
    r = _dnode(tmp_path, "synth", *[a.replace("{s}", str(s)) for a in args])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], r.stderr
