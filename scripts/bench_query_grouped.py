"""Cost of a grouped SQL query (issue 16): 3 real MPyC party processes, 3 owners, beside DuckDB
on the same plaintext rows (``scripts/bench_query.py`` runs it with the PSI and join workloads).

One function per workload (``WORKLOADS``; ``--workload NAME``, repeatable); each returns one
row per size with ``seconds`` (the MPC: party start, connection, kernel, opening),
``bytes_per_seat`` (the most any party sent, MPyC's counters), ``owner_share_seconds`` and
``duckdb_seconds`` (the same SQL over the UNION ALL of the plaintext tables). A size predicted
(linearly from the previous one) to exceed ``--budget`` seconds is not run: its row is an
extrapolation marked ``"extrapolated": true``.

    python scripts/bench_query_grouped.py --json                  # grouped, 10k ... 1M rows
    python scripts/bench_query_grouped.py --workload grouped --rows 10000 --checks off
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the checkout: dnode
from bench_data import machine_info  # noqa: E402

from dnode.node.mpc.executor import MpcJob, free_port, run_party  # noqa: E402
from dnode.node.mpc.influence import table_witness, task_witness  # noqa: E402
from dnode.node.mpc.sharing import field_modulus, share  # noqa: E402
from dnode.scheduler.programs import Column  # noqa: E402
from dnode.scheduler.programs.query.build import query_params  # noqa: E402
from dnode.scheduler.programs.tables import Table  # noqa: E402

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
CUSTOMERS = (
    Column("age", "int", 0, Fraction(18), Fraction(90)),
    Column("income", "fixed", 2, Fraction(0), Fraction(10_000)),
    Column("region", "cat", domain=("n", "s", "e", "w")),
)
GROUPED_SQL = (
    "SELECT region, COUNT(*), AVG(income), SUM(age) FROM customers WHERE age >= 40 GROUP BY region"
)


def _tables(rows: int, seed: int) -> list[dict[str, np.ndarray]]:
    sizes = [rows // 3 + (1 if i < rows % 3 else 0) for i in range(3)]
    out = []
    for i, n in enumerate(sizes):
        rng = np.random.default_rng([seed, i])
        out.append({
            "age": rng.integers(18, 91, n),
            "income": rng.integers(0, 1_000_001, n),  # cents
            "region": rng.integers(0, 4, n),
        })  # fmt: skip
    return out


def _duckdb(sql: str, tables: list[dict[str, np.ndarray]]) -> float:
    import duckdb

    con = duckdb.connect()
    regions = np.array(["n", "s", "e", "w"])
    cols = {
        "age": np.concatenate([t["age"] for t in tables]),
        "income": np.concatenate([t["income"] for t in tables]) / 100,
        "region": regions[np.concatenate([t["region"] for t in tables])],
    }
    con.register("src", cols)
    con.execute(
        "CREATE TABLE customers AS SELECT age::BIGINT AS age, income::DECIMAL(18,2) AS income,"
        " region FROM src"
    )
    t0 = time.perf_counter()
    con.execute(sql).fetchall()
    return time.perf_counter() - t0


async def _parties(params: Any, encoded: list[list[int]], checks: bool, timeout: float) -> Any:
    p = field_modulus(params.bit_length)
    w = task_witness(params) if checks else None
    t0 = time.perf_counter()
    shares = [share(e if w is None else [*e, *table_witness(e, w)], 3, 1, p) for e in encoded]
    t_share = time.perf_counter() - t0
    ports = [("127.0.0.1", free_port()) for _ in range(3)]
    jobs = [
        MpcJob.for_task(params, i, ports, 1, [s[i] for s in shares], witness=w, checks=checks)
        for i in range(3)
    ]
    out: list[Any] = [None] * 3
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        out[i] = await run_party(jobs[i], timeout=timeout)

    async with trio.open_nursery() as n:
        for i in range(3):
            n.start_soon(one, i)
    return out, time.perf_counter() - t0, t_share


def grouped(rows: int, seed: int, checks: bool, timeout: float, mpc: bool = True) -> dict[str, Any]:
    """A grouped aggregate with WHERE over one table split across 3 owners (UNION ALL);
    ``mpc=False``: DuckDB only (beside an extrapolated MPC figure)."""
    tables = _tables(rows, seed)
    if not mpc:
        return {"duckdb_seconds": round(_duckdb(GROUPED_SQL, tables), 4)}
    _, params = query_params(
        GROUPED_SQL, {"customers": CUSTOMERS}, {"customers": list(OWNERS)},
        max_rows=max(rows, 1),
    )  # fmt: skip
    encoded = []
    for t in tables:
        data = tuple(tuple(int(v) for v in t[c.name]) for c in params.columns)
        encoded.append(params.spec.encode_owner(params, Table(params.columns, data)))
    out, wall, t_share = trio.run(_parties, params, encoded, checks, timeout)
    res = params.spec.finish(params, out[0].revealed, out[0].rows)
    return {
        "workload": "grouped",
        "sql": GROUPED_SQL,
        "rows": rows,
        "checks": checks,
        "seconds": round(wall, 2),
        "bytes_per_seat": max(r.bytes_sent for r in out),
        **usage(out),
        "owner_share_seconds": round(t_share, 2),
        "duckdb_seconds": round(_duckdb(GROUPED_SQL, tables), 4),
        "bit_length": params.bit_length,
        "first_group_rows": int(res.values[0]),
        "extrapolated": False,
    }


def usage(out: list[Any]) -> dict[str, Any]:
    """Per party (MpcResult): CPU seconds and peak resident memory (MB)."""
    return {
        "cpu_seconds_per_party": [round(r.cpu_seconds, 1) for r in out],
        "peak_rss_mb_per_party": [round(r.peak_rss / 2**20) for r in out],
    }


#: name -> f(rows, seed, checks, timeout, mpc=True) -> one result row
WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {"grouped": grouped}
DEFAULT_ROWS: dict[str, list[int]] = {"grouped": [10_000, 100_000, 1_000_000]}


def series(
    name: str,
    sizes: list[int],
    seed: int,
    checks: bool,
    budget: float,
    say: bool = False,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """One row per size; a size predicted to take longer than ``budget`` s is extrapolated
    (``math.inf``: every size runs); a run's deadline is ``timeout`` (default 2 x budget)."""
    results: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for n in sorted(sizes):
        guess = last["seconds"] * n / last["rows"] if last else 0.0
        if last and guess > budget:
            bytes_guess = last["bytes_per_seat"] * n // last["rows"]
            duck = WORKLOADS[name](n, seed, checks, budget, mpc=False)
            results.append({**last, "rows": n, "seconds": round(guess, 1),
                            "bytes_per_seat": bytes_guess, **duck,
                            "extrapolated": True})  # fmt: skip
            continue
        try:
            last = WORKLOADS[name](n, seed, checks, timeout or budget * 2)
        except Exception as e:  # noqa: BLE001 - a failed size is reported, the rest run
            results.append({"workload": name, "rows": n, "error": str(e)[:300]})
            break
        results.append(last)
        if say:
            print(f"{name:<10} {n:>9} rows {last['seconds']:>9.2f} s "
                  f"{last['bytes_per_seat'] / 1e6:>9.1f} MB/seat  DuckDB "
                  f"{last['duckdb_seconds']:.4f} s", flush=True)  # fmt: skip
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    ap.add_argument("--rows", type=int, action="append", help="rows in total (repeatable)")
    ap.add_argument("--budget", type=float, default=900.0, help="longest run in seconds")
    ap.add_argument("--checks", choices=("on", "off"), default="on")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the JSON report to this file")
    a = ap.parse_args()
    results: list[dict[str, Any]] = []
    for name in a.workload or sorted(WORKLOADS):
        sizes = a.rows or DEFAULT_ROWS.get(name, [10_000])
        results += series(name, sizes, a.seed, a.checks == "on", a.budget, say=not a.json)
    report = {"machine": machine_info(), "results": results}
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))
    if a.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
