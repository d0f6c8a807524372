"""`dnode programs` and the program flags of `dnode task params` (no chain needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def dnode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    cmd = [sys.executable, "-m", "dnode.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=60, check=False)


def test_programs_lists_every_program_with_its_arguments() -> None:
    r = dnode("--json", "programs")
    assert r.returncode == 0, r.stderr
    progs = {p["name"]: p for p in json.loads(r.stdout)["programs"]}
    assert {"mpc.mean", "mpc.median", "mpc.histogram", "he.matmul"} <= set(progs)
    assert [a["name"] for a in progs["mpc.quantiles"]["args"]] == [
        "q", "dp_bins", "epsilon", "rho", "delta"]  # fmt: skip
    assert progs["he.mean"]["revealed_to"].startswith("the requester")
    # a program added from outside the package (a spec module named by DNODE_PROGRAMS)
    r = dnode("programs", "test.dot", env={"DNODE_PROGRAMS": "tests.programs.dot_spec"})
    assert r.returncode == 0 and "inner product" in r.stdout


def test_task_params_take_the_programs_own_flags(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    r = dnode("--json", "task", "params", "--program", "mpc.quantiles", "--owner", OWNER,
              "--allow-single-owner",
              "--column", "age:int:0:120", "--q", "0.1,0.5", "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    params = json.loads(out.read_text())
    assert params["args"] == {"q": ["0.1", "0.5"]}
    assert params["columns"] == [{"name": "age", "type": "int", "min": 0, "max": 120}]
    args = tmp_path / "args.json"
    args.write_text('{"q": "0.5"}')
    r = dnode("task", "params", "--program", "mpc.quantiles", "--owner", OWNER,
              "--allow-single-owner",
              "--args", str(args), "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_bad_program_flags_are_one_line_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "p.json")
    for args, needle in [
        (["--program", "mpc.mean", "--q", "0.5"], "No such option '--q'"),
        (["--program", "mpc.quantiles", "--q", "2"], "q needs 1+ values in [0, 1]"),
        (
            [
                "--program",
                "mpc.variance",
                "--column",
                "x:fixed:6:-1e15:1e15",
                "--max-rows",
                "1048576",
            ],
            "cannot take column 'x'",
        ),  # fmt: skip
        (["--program", "mpc.mean", "--column", "r:cat:a|b"], "cannot take column 'r' of type cat"),
    ]:
        r = dnode("task", "params", "--owner", OWNER, "--allow-single-owner", "--out", out, *args)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], r.stderr


def test_json_flag_is_taken_anywhere_on_the_line() -> None:
    """Users type `dnode programs mpc.mean --json`: the global flag is hoisted, same output."""
    before = dnode("--json", "programs", "mpc.mean")
    after = dnode("programs", "mpc.mean", "--json")
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    plain = dnode("programs", "mpc.mean")
    assert plain.returncode == 0 and not plain.stdout.lstrip().startswith("{")


def test_dp_flags_reach_the_programs_that_take_them_and_are_refused_with_a_reason(
    tmp_path: Path,
) -> None:
    """--epsilon on psi.cardinality / ml.kmeans / mpc.median (issue 18) lands in the params;
    on ml.predict it is one line saying why (a per-record output), exit 1."""
    out = tmp_path / "p.json"
    r = dnode("--json", "task", "params", "--program", "psi.cardinality", "--owner", OWNER,
              "--owner", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "--column", "id:id",
              "--epsilon", "0.5",
              "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["args"] == {"epsilon": "0.5"}
    r = dnode("task", "params", "--program", "ml.predict", "--owner", OWNER,
              "--allow-single-owner", "--column", "x:int:0:9", "--model", "1,2",
              "--epsilon", "1", "--out", str(out))  # fmt: skip
    assert r.returncode == 1 and "per scored row" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
