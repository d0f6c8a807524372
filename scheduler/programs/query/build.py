"""From SQL text, public table schemas and the owners holding each table to the task params
(and the ``--explain`` account of what a query reveals): the library behind ``dnode query``,
usable from Python without the CLI.

A table name stands for the UNION ALL of every owner (or dataset) declaring it: the task's
owners are all of them, each contributing its rows of the same schema.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dnode.scheduler.errors import UnknownProgram
from dnode.scheduler.programs.params import TaskParams
from dnode.scheduler.programs.query.errors import QueryError
from dnode.scheduler.programs.query.plan import Catalog, Plan, compile_query
from dnode.scheduler.programs.query.spec import Needs, hist_edges, schema_map
from dnode.scheduler.programs.registry import get_program
from dnode.scheduler.programs.schema import Column, schema_from

JOIN_PROGRAM = "query.join"


def read_schema(path: Path) -> tuple[str, tuple[Column, ...]]:
    """A table's public schema file: ``{"table": NAME, "columns": [...]}`` (the column objects
    of ``dnode task post --schema``); without ``table`` the file's stem names it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise QueryError(f"cannot read schema {path}: {e}") from None
    cols = doc.get("columns") if isinstance(doc, dict) else doc
    if not isinstance(cols, list):
        raise QueryError(f"schema {path}: want {{'table': NAME, 'columns': [...]}}")
    name = str(doc.get("table") or path.stem) if isinstance(doc, dict) else path.stem
    return name, schema_from(cols)


def query_params(
    sql: str,
    catalog: Catalog,
    owners: Mapping[str, Sequence[str]],
    *,
    max_rows: int = 1 << 16,
    input_timeout: int = 120,
    extra: Mapping[str, Any] | None = None,
    result_key: str = "",
    dp: Mapping[str, Any] | None = None,
) -> tuple[Plan, TaskParams]:
    """Compile ``sql`` against ``catalog`` and build the task params; ``owners``: table name ->
    the addresses holding it; ``dp``: the differential-privacy arguments (epsilon or rho,
    delta; registry.DP_ARGS), added to the program's own. QueryError (one line) for anything
    refused before posting."""
    plan, params = _query_params(
        sql, catalog, owners, max_rows=max_rows, input_timeout=input_timeout, extra=extra,
        result_key=result_key,
    )  # fmt: skip
    asked = {k: v for k, v in (dp or {}).items() if v is not None}
    if asked:
        params = dataclasses.replace(params, args={**params.args, **asked})
    return plan, params


def _query_params(
    sql: str,
    catalog: Catalog,
    owners: Mapping[str, Sequence[str]],
    *,
    max_rows: int,
    input_timeout: int,
    extra: Mapping[str, Any] | None,
    result_key: str,
) -> tuple[Plan, TaskParams]:
    plan = compile_query(sql, catalog)
    for t in plan.tables:
        if not owners.get(t):
            raise QueryError(f"no --owner or --dataset holds table {t!r}")
    if plan.kind == "join":
        try:
            spec = get_program(JOIN_PROGRAM)
        except UnknownProgram:
            raise QueryError(
                f"JOIN queries run as the {JOIN_PROGRAM} program, which this dnode does not have"
            ) from None
        build = getattr(spec, "build_params", None)
        if build is not None:
            params = build(
                sql, plan, catalog, owners, max_rows=max_rows, input_timeout=input_timeout,
                extra=dict(extra or {}), result_key=result_key,
            )  # fmt: skip
        else:
            params = join_params(
                sql, plan, catalog, owners, max_rows=max_rows, input_timeout=input_timeout,
                extra=extra, result_key=result_key,
            )  # fmt: skip
        return plan, params
    (table,) = plan.tables
    by = {c.name: c for c in catalog[table]}
    cols = tuple(by[c] for c in plan.columns) + tuple(c for c in by.values() if c.type == "id")
    # an id column the query names only in COUNT(col) must be in the schema it is checked on
    params = TaskParams(
        program="query",
        owners=tuple(owners[table]),
        args={"sql": sql, "plan": plan.to_dict()},
        columns=cols,
        input_timeout=input_timeout,
        max_rows=max_rows,
        extra=dict(extra or {}),
        result_key=result_key,
    )
    return plan, params


JOIN_FNS = ("count", "sum", "avg", "var_samp", "var_pop", "stddev_samp", "stddev_pop",
            "covar_pop", "covar_samp", "corr")  # fmt: skip


def join_params(
    sql: str,
    plan: Plan,
    catalog: Catalog,
    owners: Mapping[str, Sequence[str]],
    *,
    max_rows: int = 1 << 16,
    input_timeout: int = 120,
    extra: Mapping[str, Any] | None = None,
    result_key: str = "",
) -> TaskParams:
    """A join plan as the params of ``query.join`` in its own plan form (i16-psi:
    ``{"tables": [[left columns], [right columns]], "aggregates": [[fn, col...], ...]}``,
    one owner per table, one id column): what that program runs, refused here with one line.
    The SQL text travels in ``extra["sql"]`` so the params digest covers it."""
    if plan.where or plan.group_by or plan.having:
        raise QueryError(f"{JOIN_PROGRAM} runs no WHERE, GROUP BY or HAVING (yet): aggregate "
                         "the whole join")  # fmt: skip
    left, right = plan.tables
    for t in (left, right):
        if len(owners.get(t, ())) != 1:
            raise QueryError(f"a JOIN takes one owner per table; {t!r} has {len(owners[t])}")
    ids = [c.split(".", 1)[1] for c in plan.on]
    if ids[0] != ids[1]:
        raise QueryError(f"{JOIN_PROGRAM} joins identifier columns of the same name "
                         f"(got {ids[0]!r} and {ids[1]!r})")  # fmt: skip
    split: list[list[str]] = [[], []]
    cols: list[Column] = [next(c for c in catalog[left] if c.name == ids[0])]
    for q in plan.columns:
        t, name = q.split(".", 1)
        side = 0 if t == left else 1
        if name in split[1 - side] or name in split[side]:
            raise QueryError(f"column {name!r} is in both joined tables: rename one")
        split[side].append(name)
        cols.append(next(c for c in catalog[t] if c.name == name))
    aggs: list[list[str]] = []
    for a in plan.aggs:
        if a["fn"] not in JOIN_FNS:
            raise QueryError(f"{JOIN_PROGRAM} computes {', '.join(JOIN_FNS)}; not "
                             f"{str(a['fn']).upper()}")  # fmt: skip
        aggs.append([a["fn"], *(str(a[k]).split(".", 1)[1] for k in ("col", "col2") if k in a)])
    if [s["agg"] for s in plan.select if "agg" in s] != list(range(len(plan.aggs))):
        raise QueryError(f"{JOIN_PROGRAM}: name each aggregate once, in SELECT")
    return TaskParams(
        program=JOIN_PROGRAM,
        owners=(owners[left][0], owners[right][0]),
        args={"plan": {"tables": split, "aggregates": aggs}},
        columns=tuple(cols),
        input_timeout=input_timeout,
        max_rows=max_rows,
        extra={**dict(extra or {}), "sql": sql},
        result_key=result_key,
    )


def explain(
    params: TaskParams,
    plan: Plan,
    owners: Mapping[str, Sequence[str]],
    *,
    reward: int = 0,
    prices: Mapping[int, int] | None = None,
    committee: int = 3,
) -> dict[str, Any]:
    """What posting this query costs, who takes part and what it reveals to whom."""
    prices = dict(prices or {})
    t = (committee - 1) // 2
    private = bool(params.result_key)
    shape, labels = params.spec.layout(params)
    reveals = _reveals(params, plan) if plan.kind == "aggregate" else [params.spec.reveals]
    guarantee = params.spec.guarantee(params)
    if guarantee is not None:
        scope = f"; {guarantee['scope']}" if guarantee.get("scope") else ""
        reveals = [
            f"differential privacy: every size, sum and histogram below is opened only with "
            f"discrete "
            f"Laplace noise sampled inside the MPC, ({guarantee['epsilon']}, "
            f"{guarantee['delta']})-DP for {guarantee['neighbours']} (the exact values are "
            f"never opened{scope})",
            *reveals,
        ]
    to_whom = (
        "you only: the committee seals its output shares to your account's key; no seat, and "
        f"no {t} colluding seats, learn them"
        if private
        else f"the committee ({committee} seats) opens them, and the answer goes on-chain "
        "for everyone"
    )
    return {
        "sql": params.args.get("sql"),
        "plan": plan.to_dict(),
        "program": params.program,
        "tables": [{"table": t_, "owners": list(owners.get(t_, ()))} for t_ in plan.tables],
        "columns": [c.to_dict() for c in params.columns],
        "output": {"shape": list(shape), "labels": [list(x) for x in labels]},
        "reveals": reveals,
        "revealed_to": to_whom,
        "adversary": (
            f"privacy of every row holds while at most {t} of the {committee} seats collude "
            "(Shamir sharing, honest majority); with the malicious-minority checks a seat that "
            "deviates is detected and the task aborts instead of reporting a wrong answer; an "
            "owner sharing a value outside its declared range in a compared column, or a "
            "category that is not one-hot, aborts the session"
        ),
        "cost": {
            "reward": reward,
            "dataset_prices": {str(k): v for k, v in prices.items()},
            "total": reward + sum(prices.values()),
        },
        "private_result": private,
        "dp": guarantee,
        "params_digest": "0x" + params.digest.hex(),
    }


def _reveals(params: TaskParams, plan: Plan) -> list[str]:
    sch = schema_map(params)
    need = Needs(plan, sch)
    groups = params.spec.out_shape(params)[0]
    where = " after WHERE" if plan.where else ""
    out = [
        (
            f"the size of every group{where}: {groups} group(s) (each combination of "
            f"{', '.join(plan.group_by)}), empty ones included"
            if plan.group_by
            else f"the number of rows{where}"
        )
        + " -- exact, with no minimum: a WHERE that matches one row reveals that row's "
        "aggregated values"
    ]
    per = " per group" if plan.group_by else ""
    if need.sum:
        out.append(f"the sum of {', '.join(need.sum)}{per}")
    if need.sumsq:
        out.append(f"the sum of squares of {', '.join(need.sumsq)}{per}")
    if need.cross:
        pairs = ", ".join(f"{a}*{b}" for a, b in need.cross)
        out.append(f"the sum of products {pairs}{per}")
    hist = hist_edges(params)
    for c, edges in hist.items():
        out.append(
            f"a noisy histogram of {c}{per}: {len(edges) - 1} equal-width bins over its declared "
            "range; MIN, MAX and quantiles are read off its noisy CDF (error up to one bin "
            "width plus the CDF noise)"
        )
    if hist:
        need.min, need.max, need.quantile = [], [], {}
    if need.min:
        out.append(f"the minimum of {', '.join(need.min)}{per}")
    if need.max:
        out.append(f"the maximum of {', '.join(need.max)}{per}")
    for c, qs in need.quantile.items():
        out.append(
            f"the order statistics of {c}{per} that quantile(s) {', '.join(qs)} interpolate; the "
            "committee also sees the group sizes and one bit per search step (they spell them)"
        )
    if plan.having:
        out.append(
            "HAVING is evaluated on the statistics above after they are opened: "
            + (
                "you receive every group's statistics (the sealed shares of all of them)"
                if params.result_key
                else "the committee sees every group's statistics; the on-chain answer holds "
                "only the groups that pass (the others read rows = -1 and zeros)"
            )
        )
    return out


def explain_lines(e: Mapping[str, Any]) -> str:
    """The human form of :func:`explain`."""
    lines = [f"query: {e['sql']}", f"program: {e['program']} (params {e['params_digest']})"]
    for t in e["tables"]:
        lines.append(f"table {t['table']}: UNION ALL of {len(t['owners'])} owner(s): "
                     + ", ".join(t["owners"]))  # fmt: skip
    lines.append("columns shared (encoded in MPC, ranges public): "
                 + ", ".join(c["name"] for c in e["columns"] if c["type"] != "id"))  # fmt: skip
    lab = e["output"]["labels"]
    axes = [", ".join(x) or "-" for x in lab]
    rows, cols = (["-", "-"] + axes)[-2:]  # a vector's one axis is its columns
    shape = " x ".join(map(str, e["output"]["shape"]))
    lines.append(f"answer: {shape} values; rows {rows}; columns {cols}")
    lines.append("reveals:")
    lines += [f"  - {r}" for r in e["reveals"]]
    lines.append(f"to: {e['revealed_to']}")
    lines.append(f"adversary: {e['adversary']}")
    c = e["cost"]
    prices = ", ".join(f"dataset {k}: {v} wei" for k, v in c["dataset_prices"].items())
    lines.append(f"cost: reward {c['reward']} wei" + (f" + {prices}" if prices else "")
                 + f" = {c['total']} wei")  # fmt: skip
    return "\n".join(lines)
