"""``dnode owner``: bad config and misuse are one line on stderr with a non-zero exit; the
pending list commands work on the agent's state db (no chain, no running agent needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dnode.node.owner.state import PENDING, OwnerState, open_owner_state


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dnode.cli", "--home", str(home), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def one_line_error(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode != 0, r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0], lines[0]


def test_start_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    one_line_error(run(tmp_path, "owner", "start"), "cannot read")
    cfg = tmp_path / "owner.toml"
    cfg.write_text('[[dataset]]\nname = "a"\nfile = "a.csv"\n[dataset.policy]\nrate = 1\n')
    one_line_error(run(tmp_path, "owner", "start", "--config", str(cfg)), "unknown key 'rate'")


def test_print_config_resolves_flags_over_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "owner.toml"
    cfg.write_text('poll_interval = 3.0\n[[dataset]]\nname = "a"\nfile = "a.csv"\n')
    r = run(tmp_path, "owner", "start", "--config", str(cfg), "--poll-interval", "0.5",
            "--metrics-port", "-1", "--print-config")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["poll_interval"] == 0.5 and out["metrics_port"] is None
    assert out["datasets"][0]["file"] == str(tmp_path / "a.csv")


def test_pending_approve_reject_on_the_state_db(tmp_path: Path) -> None:
    one_line_error(run(tmp_path, "owner", "pending"), "no owner agent state")
    st = open_owner_state(tmp_path / "owner-state")
    st.decide(5, "sales", PENDING, "program mpc.sum is not allowed", "0xabc", "mpc.sum")
    st.decide(6, "sales", PENDING, "rate limit", "0xabc", "mpc.mean")
    st.close()
    r = run(tmp_path, "--json", "owner", "pending")
    assert [p["task_id"] for p in json.loads(r.stdout)["pending"]] == [5, 6]
    assert run(tmp_path, "owner", "approve", "5").returncode == 0
    r = run(tmp_path, "owner", "reject", "6", "--reason", "no thanks")
    assert r.returncode == 0, r.stderr
    one_line_error(run(tmp_path, "owner", "approve", "6"), "task 6 is not pending (it is rejected)")
    one_line_error(run(tmp_path, "owner", "reject", "7"), "no decision for task 7")
    st2 = OwnerState(tmp_path / "owner-state")
    assert st2.decision(5).state == "approved"  # type: ignore[union-attr]
    assert st2.decision(6).reason == "no thanks"  # type: ignore[union-attr]
