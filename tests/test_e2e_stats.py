"""The statistics family through real node processes, on one table split across 3 owners.

Every result is compared with numpy on the same (concatenated) table: exact where the output
is rational (sums, means, variances, counts, order statistics of integers and fixed-point
decimals: the values are exact rationals rounded to 18 decimals), within 1e-12 relative for
outputs through a square root (std, correlation). A program added by a test (a spec module
and a kernel module under tests/programs, named by DNODE_PROGRAMS) runs the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnode.cli.devcluster import DevCluster

pytestmark = pytest.mark.slow

HEADER = "id,age,income,region"
ROWS = {
    "owner-a": ["a1,34,52000.50,n", "a2,51,61000.25,s", "a3,29,38000,n", "a4,62,90500.75,e"],
    "owner-b": ["b1,71,43000,w", "b2,23,29999.99,n", "b3,56,75000,s"],
    "owner-c": ["c1,33,48000.10,e", "c2,48,67000,n", "c3,67,88000.01,w", "c4,39,51000,s"],
}
AGE = "age:int:0:120"
INCOME = "income:fixed:2:0:200000"
REGION = "region:cat:n|s|e|w"


def _table() -> tuple[np.ndarray, list[Fraction], list[str]]:
    rows = [r.split(",") for rs in ROWS.values() for r in rs]
    return (
        np.array([int(r[1]) for r in rows]),
        [Fraction(Decimal(r[2])) for r in rows],
        [r[3] for r in rows],
    )


def _frac(text: str) -> Fraction:
    return Fraction(Decimal(text))


def _flat(r: dict) -> list[Fraction]:
    """A result's values, row-major, as exact fractions."""
    return [Fraction(v, 10 ** r["decimals"]) for v in r["values_scaled"]]


def test_statistics_family_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNODE_PROGRAMS", "tests.programs.dot_spec")  # the test-added program
    cluster = DevCluster(tmp_path, challenge_period=4)
    age, income, region = _table()
    income_f = np.array([float(x) for x in income])
    with cluster.running():
        for i in range(1, 4):
            cluster.start_node(f"node-{i}", capacity=10, extra_args=["--max-tasks", "10"])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in ROWS}
        files = {}
        for n, rows in ROWS.items():
            files[n] = tmp_path / f"{n}.csv"
            files[n].write_text("\n".join([HEADER, *rows]) + "\n")
        col = lambda *cs: [x for c in cs for x in ("--column", c)]  # noqa: E731
        tasks = {
            "quantiles": ("mpc.quantiles", [*col(AGE, INCOME), "--q", "0,0.25,0.5,0.75,1"]),
            "variance": ("mpc.variance", col(AGE, INCOME)),
            "correlation": ("mpc.correlation", col(AGE, INCOME)),
            "histogram": ("mpc.histogram", col(REGION)),
            "bins": ("mpc.histogram", [*col(AGE), "--bins", "0,30,50,120"]),
            "std": ("mpc.std", col(INCOME)),
            "dot": ("test.dot", col(AGE, INCOME)),
            "min": ("mpc.min", col(AGE, INCOME)),
            "max": ("mpc.max", col(AGE, INCOME)),
        }
        # 21 contributing CLI processes on a small machine: generous input and report windows
        slow = ["--input-timeout", "900", "--seat-timeout", "300", "--report-timeout", "1800"]
        ids = {
            k: cluster.post_mpc(requester, list(owners.values()), prog, extra=[*extra, *slow])
            for k, (prog, extra) in tasks.items()
        }
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda t: cluster.contribute_all(t, owners, files), ids.values()))
        res = {
            k: cluster.dnode(requester, "task", "result", str(t), "--wait", "600")
            for k, t in ids.items()
        }

    q = res["quantiles"]
    assert q["shape"] == [5, 2] and q["labels"][1] == ["age", "income"]
    want_age = np.quantile(age, [0, 0.25, 0.5, 0.75, 1])
    flat = _flat(q)
    got = [flat[2 * i : 2 * i + 2] for i in range(5)]
    assert [float(r[0]) for r in got] == list(want_age)  # min, quartiles, median, max: exact
    sorted_inc = sorted(income)
    assert got[0][1] == sorted_inc[0] and got[4][1] == sorted_inc[-1]  # min/max exactly
    assert [float(r[1]) for r in got] == pytest.approx(
        list(np.quantile(income_f, [0, 0.25, 0.5, 0.75, 1])), rel=1e-15
    )

    v = res["variance"]["named"]
    n = len(age)
    mean_inc = sum(income) / n
    half = Fraction(1, 2 * 10**18)  # every value is exact, then rounded to 18 decimals
    assert abs(_frac(v["mean/age"]) - Fraction(int(age.sum()), n)) <= half
    assert abs(_frac(v["mean/income"]) - mean_inc) <= half
    var_inc = sum((x - mean_inc) ** 2 for x in income) / n
    assert abs(_frac(v["variance/income"]) - var_inc) <= half
    mean_age = Fraction(int(age.sum()), n)
    var_age = sum((int(a) - mean_age) ** 2 for a in age) / n
    assert abs(_frac(v["variance/age"]) - var_age) <= half
    assert float(var_age) == pytest.approx(float(age.var()), rel=1e-15)  # and numpy agrees

    corr = [float(x) for x in _flat(res["correlation"])]
    assert corr == pytest.approx(np.corrcoef(age, income_f).ravel().tolist(), rel=1e-12)
    assert float(_flat(res["std"])[0]) == pytest.approx(income_f.std(), rel=1e-12)

    h = res["histogram"]["named"]
    assert h == {r: str(region.count(r)) for r in ("n", "s", "e", "w")}
    assert _flat(res["bins"]) == list(np.histogram(age, [0, 30, 50, 120])[0])
    assert list(res["bins"]["named"]) == ["[0,30)", "[30,50)", "[50,120]"]

    assert _flat(res["min"]) == [int(age.min()), min(income)]  # tournaments: exact
    assert _flat(res["max"]) == [int(age.max()), max(income)]

    dot = sum(Fraction(int(a)) * i for a, i in zip(age, income, strict=True))
    assert _flat(res["dot"]) == [dot] and res["dot"]["count"] == n
