"""The PSI family and JOIN ON id through real node processes (one cluster for the module):
PSI cardinality of 3 owners, the intersection sealed to the requester (only it can read it),
labelled PSI, and a join of two owners' tables with aggregates over columns from both. Every
answer equals DuckDB's on the same plaintext files; no node's log or state holds an id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dnode.cli.devcluster import ClusterError, DevCluster

pytestmark = pytest.mark.slow

# ids no log line would show by accident; one is an integer longer than any machine word
LONG = "98765432109876543210987654321098765432"
A = [("psi-amber-7f31", 34), ("psi-birch-2c90", 51), ("psi-cedar-9d04", 29), (LONG, 62),
     ("psi-delta-0a11", 45), ("psi-ember-5b77", 71), ("psi-fjord-3e28", 23)]  # fmt: skip
B = [
    ("psi-birch-2c90", "61000.25"),
    (LONG, "90500.75"),
    ("psi-gorse-6f12", "38000"),
    ("psi-amber-7f31", "52000.50"),
    ("psi-ember-5b77", "43000"),
    ("psi-amber-7f31", "1000.01"),
]  # fmt: skip  (a duplicate id: both rows join)
C = ["psi-amber-7f31", LONG, "psi-hazel-1d55", "psi-ember-5b77", "psi-cedar-9d04"]
AGGS = [["count"], ["avg", "age"], ["sum", "income"], ["var_samp", "income"],
        ["stddev", "age"], ["corr", "age", "income"], ["covar_samp", "age", "income"]]  # fmt: skip
SLOW = ["--input-timeout", "900", "--seat-timeout", "300", "--report-timeout", "1800"]


def _write(path: Path, header: str, rows: list[Any]) -> Path:
    lines = [",".join(map(str, r)) if isinstance(r, tuple) else str(r) for r in rows]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _flat(r: dict) -> list[Fraction]:
    return [Fraction(v, 10 ** r["decimals"]) for v in r["values_scaled"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One cluster: 3 nodes, 3 owners (owner-a also requests the private results)."""
    tmp = tmp_path_factory.mktemp("psi")
    cluster = DevCluster(tmp, challenge_period=4)
    files = {
        "owner-a": _write(tmp / "a.csv", "id,age", A),
        "owner-b": _write(tmp / "b.csv", "id,income", B),
        "owner-c": _write(tmp / "c.csv", "id", C),
    }
    with cluster.running():
        nodes = [cluster.start_node(f"node-{i}", capacity=10, extra_args=["--max-tasks", "10"])
                 for i in range(1, 4)]  # fmt: skip
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in files}
        two = {n: owners[n] for n in ("owner-a", "owner-b")}
        boot = cluster.bootstrap()[0]
        col = lambda *cs: [x for c in cs for x in ("--column", c)]  # noqa: E731
        plan = {"tables": [["age"], ["income"]], "aggregates": AGGS}
        tasks = {
            "card": (requester, owners, "psi.cardinality", col("id:id")),
            # issue 18: the same count with noise sampled inside the MPC
            "card_dp": (requester, two, "psi.cardinality", [*col("id:id"), "--epsilon", "1"]),
            "inter": (owners["owner-a"], two, "psi.intersection",
                      [*col("id:id"), "--private-result"]),
            "label": (owners["owner-a"], two, "psi.label",
                      [*col("id:id", "income:fixed:2:0:200000"), "--private-result"]),
            "join": (requester, two, "query.join",
                     [*col("id:id", "age:int:0:120", "income:fixed:2:0:200000"),
                      "--args", json.dumps({"plan": plan})]),
        }  # fmt: skip
        ids = {
            k: cluster.post_mpc(who, list(os_.values()), prog, extra=[*extra, *SLOW])
            for k, (who, os_, prog, extra) in tasks.items()
        }
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda k: cluster.contribute_all(ids[k], tasks[k][1], files), ids))
        res = {
            k: cluster.dnode(tasks[k][0], "task", "result", str(t), "--wait", "900",
                             "--bootstrap", boot)
            for k, t in ids.items()
        }  # fmt: skip
        kept = next((owners["owner-a"].home / "params").glob(f"*-{ids['inter']}.json"), None)
        other = None
        if kept is not None:  # another account holding the params cannot open it
            try:
                cluster.dnode(owners["owner-b"], "task", "result", str(ids["inter"]),
                              "--params", str(kept), "--bootstrap", boot)  # fmt: skip
            except ClusterError as e:
                other = str(e)
        yield {"res": res, "files": files, "nodes": nodes, "other": other, "kept": kept}


def _db(files: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute(f"CREATE TABLE a AS SELECT id, age::BIGINT AS age FROM "
               f"read_csv('{files['owner-a']}', all_varchar=true)")  # fmt: skip
    db.execute(f"CREATE TABLE b AS SELECT id, income::DECIMAL(12,2) AS income FROM "
               f"read_csv('{files['owner-b']}', all_varchar=true)")  # fmt: skip
    db.execute(f"CREATE TABLE c AS SELECT id FROM read_csv('{files['owner-c']}', "
               "all_varchar=true)")  # fmt: skip
    return db


def test_psi_cardinality_of_three_owners(run: dict[str, Any]) -> None:
    want = (
        _db(run["files"])
        .execute(
            "SELECT count(*) FROM (SELECT id FROM a INTERSECT SELECT id FROM b "
            "INTERSECT SELECT id FROM c)"
        )
        .fetchone()[0]
    )
    assert want == 3 and _flat(run["res"]["card"]) == [want]


def test_noisy_psi_cardinality_states_its_guarantee(run: dict[str, Any]) -> None:
    """--epsilon 1: the result is the intersection size of owners a and b (4) plus discrete
    Laplace noise of scale 1 drawn in the MPC; it states its neighbouring relation and that
    the committee saw the exact count."""
    r = run["res"]["card_dp"]
    (got,) = _flat(r)
    assert abs(got - 4) < 20 and got >= 0, got  # P(|Z| >= 20) < e^-19
    g = r["dp"]
    assert g["epsilon"] == "1" and "one id of one owner's set" in g["neighbours"], g
    assert "committee" in g["scope"] and g["releases"][0]["sensitivity_l1"] == 1


def test_psi_intersection_only_the_requester_reads_it(run: dict[str, Any]) -> None:
    r = run["res"]["inter"]
    assert r["private"] is True
    got = [i for (i, _), b in zip(A, _flat(r), strict=True) if b == 1]
    want = _db(run["files"]).execute("SELECT id FROM a SEMI JOIN b ON a.id = b.id").fetchall()
    assert sorted(got) == sorted(x for (x,) in want)
    assert run["kept"] is not None and "sealed to another account's key" in (run["other"] or "")


def test_labelled_psi(run: dict[str, Any]) -> None:
    r = run["res"]["label"]
    assert r["private"] is True
    flat = _flat(r)
    got = {A[j][0]: flat[2 * j + 1] for j in range(len(A)) if flat[2 * j] == 1}
    # a provider id on several rows labels with its first row (docs/protocol.md)
    rows = (
        _db(run["files"])
        .execute(
            "SELECT id, first(income ORDER BY rowid) FROM b "
            "WHERE id IN (SELECT id FROM a) GROUP BY id"
        )
        .fetchall()
    )
    assert got == {i: Fraction(Decimal(str(v))) for i, v in rows}
    assert all(flat[2 * j + 1] == 0 for j in range(len(A)) if flat[2 * j] == 0)


def test_join_on_id_with_aggregates_over_both_owners(run: dict[str, Any]) -> None:
    r = run["res"]["join"]
    sql = ", ".join("count(*)" if a[0] == "count" else f"{a[0]}({', '.join(a[1:])})"
                    for a in AGGS)  # fmt: skip
    want = _db(run["files"]).execute(f"SELECT {sql} FROM a JOIN b ON a.id = b.id").fetchone()
    got = _flat(r)
    assert got[0] == want[0] == 5 and got[2] == Fraction(Decimal(str(want[2])))  # exact
    for g, w in zip(got, want, strict=True):
        assert float(g) == pytest.approx(float(w), rel=1e-12)


def test_no_node_holds_an_id(run: dict[str, Any]) -> None:
    every = {i for i, _ in A} | {i for i, _ in B} | set(C)
    for n in run["nodes"]:
        for f in [n.log_path, *[p for p in n.member.home.rglob("*") if p.is_file()]]:
            data = f.read_bytes()
            for i in every:
                assert i.encode() not in data, (f, i)
        assert "Traceback" not in n.log_path.read_text()
