"""Shared helpers of the query tests: a schema, random tables, params from SQL, DuckDB answers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from dnode.scheduler.programs import Column, TaskParams
from dnode.scheduler.programs.query.plan import compile_query, group_labels
from dnode.scheduler.programs.tables import Table

ADDRS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
SCHEMA = (
    Column("id", "id"),
    Column("age", "int", 0, Fraction(18), Fraction(90)),
    Column("income", "fixed", 2, Fraction(0), Fraction(1000)),
    Column("region", "cat", domain=("N", "S", "E")),
    Column("tier", "cat", domain=("a", "b")),
)
CATALOG = {"customers": SCHEMA}


def random_rows(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{rng.randrange(10**9)}",
            "age": rng.randint(18, 90),
            "income": Fraction(rng.randint(0, 100_000), 100),
            "region": rng.choice(("N", "S", "E")),
            "tier": rng.choice(("a", "b")),
        }
        for _ in range(n)
    ]


def params_for(
    sql: str, owners: int = 3, result_key: str = "", max_rows: int = 1 << 12
) -> TaskParams:
    plan = compile_query(sql, CATALOG)
    by = {c.name: c for c in SCHEMA}
    cols = tuple(by[c] for c in plan.columns) + tuple(c for c in SCHEMA if c.type == "id")
    return TaskParams(
        "query",
        ADDRS[:owners],
        args={"sql": sql, "plan": plan.to_dict()},
        columns=cols,
        max_rows=max_rows,
        result_key=result_key,
    )


def table_of(params: TaskParams, rows: Sequence[dict[str, Any]]) -> Table:
    cols = params.columns
    data = []
    for c in cols:
        if c.type == "cat":
            data.append(tuple(c.domain.index(r[c.name]) for r in rows))
        elif c.type == "id":
            data.append(tuple(r[c.name] for r in rows))
        else:
            data.append(tuple(int(Fraction(r[c.name]) * 10**c.scale) for r in rows))
    return Table(cols, tuple(data))


def duckdb_answer(sql: str, owners: Sequence[Sequence[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """DuckDB over the UNION ALL of the owners' plaintext rows (income as DECIMAL(18,2))."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE customers (id VARCHAR, age BIGINT, income DECIMAL(18,2), region VARCHAR,"
        " tier VARCHAR)"
    )
    rows = [r for o in owners for r in o]
    if rows:
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
            [(r["id"], r["age"], _dec(r["income"]), r["region"], r["tier"]) for r in rows],
        )
    return con.execute(sql).fetchall()


def _dec(x: Any) -> str:
    from decimal import Decimal

    f = Fraction(x)
    return format(Decimal(f.numerator) / Decimal(f.denominator), "f")


def ours_as_rows(
    params: TaskParams, values: Sequence[Fraction]
) -> dict[tuple[str, ...], list[Fraction]]:
    """Our output as {group labels: [aggregates...]} for the groups in the answer."""
    from dnode.scheduler.programs.query.spec import plan_of, schema_map

    plan = plan_of(params)
    groups = group_labels(plan, schema_map(params))
    width = 1 + len(plan.agg_items)
    out = {}
    for g, labels in enumerate(groups):
        row = list(values[g * width : (g + 1) * width])
        if row[0] >= 0:
            out[tuple(labels)] = row[1:]
    return out
