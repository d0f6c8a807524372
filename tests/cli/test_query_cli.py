"""``dnode query`` refuses malformed and unsupported SQL, unknown columns, type mismatches and
joins on non-identifier columns BEFORE anything is posted: non-zero exit, one line on stderr.
No chain is running here: a refusal must not need one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OWNER2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


@pytest.fixture()
def schemas(tmp_path: Path) -> list[str]:
    a = tmp_path / "customers.json"
    a.write_text(json.dumps({"table": "customers", "columns": [
        {"name": "id", "type": "id"}, {"name": "age", "type": "int", "min": 0, "max": 120},
        {"name": "region", "type": "cat", "domain": ["n", "s"]}]}))  # fmt: skip
    b = tmp_path / "bank.json"
    b.write_text(json.dumps({"table": "bank", "columns": [{"name": "id", "type": "id"},
        {"name": "score", "type": "int", "min": 0, "max": 900}]}))  # fmt: skip
    return ["--schema", str(a), "--schema", str(b)]


def _dnode(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("DNODE_BOOTSTRAP", None)
    cmd = [sys.executable, "-m", "dnode.cli", "--home", str(tmp / "home"),
           "--rpc-url", "http://127.0.0.1:9", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    "sql,text",
    [
        ("SELEC COUNT(*) FROM customers", "malformed SQL"),
        ("SELECT SUM(age) OVER () FROM customers", "unsupported SQL: window function OVER"),
        ("SELECT COUNT(*) FROM customers ORDER BY 1", "unsupported SQL: ORDER BY"),
        ("SELECT SUM(nope) FROM customers", "unknown column 'nope'"),
        ("SELECT AVG(region) FROM customers", "type mismatch"),
        ("SELECT COUNT(*) FROM customers c JOIN bank b ON c.age = b.score", "join refused"),
    ],
)
def test_refusals_exit_non_zero_with_one_line(tmp_path, schemas, sql, text):
    owners = ["--owner", OWNER, "--owner", OWNER2, "--table", "customers", "--table", "bank"]
    r = _dnode(tmp_path, "query", sql, *schemas, *owners, "--reward", "0.1ether",
               "--allow-single-owner")  # fmt: skip
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_explain_states_what_is_revealed_and_costs(tmp_path, schemas):
    sql = "SELECT region, COUNT(*), AVG(age) FROM customers WHERE age >= 40 GROUP BY region"
    owners = ["--owner", OWNER, "--owner", OWNER2, "--table", "customers"]
    r = _dnode(tmp_path, "--json", "query", sql, *schemas, *owners, "--reward", "0.2ether",
               "--explain")  # fmt: skip
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)["explain"]
    assert e["cost"]["total"] == 2 * 10**17
    assert any("size of every group" in x for x in e["reveals"])
    assert any("sum of age" in x for x in e["reveals"])
    assert "1 of the 3 seats" in e["adversary"]
    assert e["tables"] == [{"table": "customers", "owners": [OWNER, OWNER2]}]


def _has_join_program() -> bool:
    from dnode.scheduler.errors import UnknownProgram
    from dnode.scheduler.programs import get_program

    try:
        get_program("query.join")
    except UnknownProgram:
        return False
    return True


def test_join_without_the_join_program_is_refused(tmp_path, schemas):
    if _has_join_program():
        pytest.skip("query.join is installed (i16-psi): joins are posted, not refused")
    sql = "SELECT COUNT(*) FROM customers c JOIN bank b ON c.id = b.id"
    owners = ["--owner", OWNER, "--owner", OWNER2, "--table", "customers", "--table", "bank"]
    r = _dnode(tmp_path, "query", sql, *schemas, *owners, "--explain")
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "query.join" in r.stderr


def test_join_explain_when_the_join_program_is_there(tmp_path, schemas):
    if not _has_join_program():
        pytest.skip("query.join (i16-psi) is not merged yet")
    sql = "SELECT COUNT(*), AVG(b.score) FROM customers c JOIN bank b ON c.id = b.id"
    owners = ["--owner", OWNER, "--owner", OWNER2, "--table", "customers", "--table", "bank"]
    r = _dnode(tmp_path, "--json", "query", sql, *schemas, *owners, "--explain")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)["explain"]
    assert e["program"] == "query.join" and e["plan"]["kind"] == "join"


def test_a_noisy_query_explains_its_guarantee(tmp_path, schemas):
    sql = (
        "SELECT region, COUNT(*), AVG(age), MIN(age), MEDIAN(age) FROM customers "
        "WHERE age >= 40 GROUP BY region"
    )
    owners = ["--owner", OWNER, "--owner", OWNER2, "--table", "customers"]
    r = _dnode(tmp_path, "--json", "query", sql, *schemas, *owners, "--epsilon", "0.5",
               "--dp-bins", "8", "--explain")  # fmt: skip
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)["explain"]
    assert e["dp"]["epsilon"] == "0.5" and "discrete Laplace" in e["dp"]["mechanism"]
    assert e["reveals"][0].startswith("differential privacy")
    groups = e["output"]["shape"][0]
    rel = {x["name"]: x for x in e["dp"]["releases"]}
    assert (rel["bins:age"]["size"], rel["bins:age"]["sensitivity_l1"]) == (groups * 8, 2)
