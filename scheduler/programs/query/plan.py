"""SQL text -> a typed, JSON-serialisable query plan, checked against the tables' public schemas.

The parser is sqlglot (DuckDB dialect); everything outside the subset below is refused with
one line naming the construct (:class:`UnsupportedSQL`), before anything is posted or paid.

Supported
---------
``SELECT <group columns and aggregates> FROM t [WHERE p] [GROUP BY c, ...] [HAVING h]`` and
``SELECT <aggregates> FROM a JOIN b ON a.id = b.id [WHERE p] [GROUP BY ...] [HAVING h]``.

* aggregates (DuckDB's definitions): ``COUNT(*)``, ``COUNT(col)`` (tables hold no NULLs: the
  same), ``SUM``, ``AVG``, ``VAR``/``VARIANCE``/``VAR_SAMP`` (sample), ``VAR_POP``,
  ``STDDEV``/``STDDEV_SAMP`` (sample), ``STDDEV_POP``, ``MIN``, ``MAX``, ``MEDIAN``,
  ``PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY col)`` / ``QUANTILE_CONT(col, q)`` (linear
  interpolation), ``CORR``, ``COVAR_POP``, ``COVAR_SAMP``; arguments are plain numeric columns;
* WHERE: ``col <op> constant`` (``= <> != < <= > >=``), ``AND``/``OR``/``NOT``, ``col [NOT] IN
  (constants)``, ``col [NOT] BETWEEN c1 AND c2``; numeric columns take numbers, categorical
  columns take labels of their declared domain (only ``=``, ``<>``, ``IN``: no order);
* GROUP BY categorical columns: every combination of domain labels is a group (at most 64);
* HAVING: the same predicates over aggregates (or their SELECT aliases) and constants;
* one table name = the UNION ALL of every owner's (or dataset's) table declaring it.

Plan JSON (the contract with the programs that run it: ``query`` here, ``query.join``)
---------------------------------------------------------------------------------------
Common keys (every value is JSON; constants are strings: numbers as exact decimal text such
as ``"40"`` or ``"-1.5"``, categorical labels as the label)::

    {
      "kind": "aggregate" | "join",
      "tables": ["customers"]            # aggregate: one table; join: [left, right]
      "on": [] | ["a.id", "b.id"],       # join only: the qualified id columns (left, right)
      "columns": ["age", "income", ...], # every non-id column the plan reads, in the order
                                         # the owners encode them; a join qualifies them:
                                         # "a.age", "b.income" (table names, aliases resolved)
      "where": PRED | null,
      "group_by": ["region", ...],       # categorical columns (qualified in a join)
      "aggs": [AGG, ...],                # every aggregate the SELECT and HAVING need
      "select": [ITEM, ...],             # the output columns, in SELECT order
      "having": HPRED | null
    }

    AGG   = {"fn": "count"}                                  # COUNT(*), COUNT(col)
          | {"fn": "sum"|"avg"|"var_samp"|"var_pop"|"stddev_samp"|"stddev_pop"
                   |"min"|"max", "col": C}
          | {"fn": "quantile", "col": C, "q": "0.5"}         # MEDIAN, PERCENTILE_CONT
          | {"fn": "corr"|"covar_pop"|"covar_samp", "col": C, "col2": C}
    ITEM  = {"name": "region", "group": C}                   # a GROUP BY column
          | {"name": "avg(income)", "agg": i}                 # index into "aggs"
    PRED  = {"op": "and"|"or", "args": [PRED, ...]}
          | {"op": "not", "arg": PRED}
          | {"op": "cmp", "col": C, "cmp": "="|"<>"|"<"|"<="|">"|">=", "value": V}
          | {"op": "in", "col": C, "values": [V, ...]}
          | {"op": "between", "col": C, "low": V, "high": V}   # inclusive, as SQL
    HPRED = PRED with "agg": i (an index into "aggs") instead of "col" (values: decimals)

``C`` is a column name of the table (aggregate) or ``"table.column"`` (join).

How a join plan reaches its program: ``scheduler.programs.query.build.query_params`` (behind
``dnode query``) looks up the program ``query.join`` and calls its spec's
``build_params(sql, plan, catalog, owners, *, max_rows, input_timeout, extra, result_key)
-> TaskParams`` (``catalog``: table -> its columns; ``owners``: table -> the addresses holding
it); without that program a JOIN is refused with one line before posting, and a ``query.join``
without ``build_params`` gets its own plan form from ``build.join_params``.

The output of an aggregate plan is one row per group (all domain combinations, row-major in
GROUP BY order; one row ``all`` without GROUP BY) and the columns ``rows`` (the group's size;
-1 when the row is not in the SQL answer: an empty group under GROUP BY, or HAVING false, whose
other values are then 0) followed by one column per aggregate ITEM of the SELECT (group ITEMs
are the row labels). SQL NULL (an empty group's AVG, a sample variance of one row, a
correlation with a constant column, where DuckDB says NULL or NaN) is reported as 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from dnode.scheduler.programs.query.errors import (
    JoinRefused,
    MalformedSQL,
    QueryError,
    TypeMismatch,
    UnknownColumn,
    UnknownTable,
    UnsupportedSQL,
)
from dnode.scheduler.programs.schema import MAX_DOMAIN, NUMERIC, Column, parse_decimal

Catalog = Mapping[str, Sequence[Column]]  # table name -> its public schema

KINDS = ("aggregate", "join")
CMPS = ("=", "<>", "<", "<=", ">", ">=")
ONE_COL = ("sum", "avg", "var_samp", "var_pop", "stddev_samp", "stddev_pop", "min", "max")
TWO_COL = ("corr", "covar_pop", "covar_samp")
FNS = ("count", *ONE_COL, "quantile", *TWO_COL)
MAX_GROUPS = MAX_DOMAIN


@dataclass(frozen=True)
class Plan:
    """A checked query (see the module docstring for the JSON form)."""

    kind: str
    tables: tuple[str, ...]
    columns: tuple[str, ...]
    aggs: tuple[dict[str, Any], ...]
    select: tuple[dict[str, Any], ...]
    where: dict[str, Any] | None = None
    group_by: tuple[str, ...] = ()
    having: dict[str, Any] | None = None
    on: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tables": list(self.tables),
            "on": list(self.on),
            "columns": list(self.columns),
            "where": self.where,
            "group_by": list(self.group_by),
            "aggs": [dict(a) for a in self.aggs],
            "select": [dict(s) for s in self.select],
            "having": self.having,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Plan:
        """A plan read back from params (shape-checked; the schema check is the spec's)."""
        if not isinstance(d, Mapping) or d.get("kind") not in KINDS:
            raise QueryError("a query plan must be an object with kind 'aggregate' or 'join'")
        try:
            plan = cls(
                kind=str(d["kind"]),
                tables=tuple(str(t) for t in d["tables"]),
                columns=tuple(str(c) for c in d["columns"]),
                aggs=tuple(dict(a) for a in d["aggs"]),
                select=tuple(dict(s) for s in d["select"]),
                where=dict(d["where"]) if d.get("where") else None,
                group_by=tuple(str(g) for g in d.get("group_by") or ()),
                having=dict(d["having"]) if d.get("having") else None,
                on=tuple(str(c) for c in d.get("on") or ()),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise QueryError(f"malformed query plan: {e}") from None
        for a in plan.aggs:
            if a.get("fn") not in FNS:
                raise QueryError(f"malformed query plan: aggregate {a.get('fn')!r}")
        for s in plan.select:
            if "agg" in s and not 0 <= int(s["agg"]) < len(plan.aggs):
                raise QueryError("malformed query plan: a SELECT item names no aggregate")
        return plan

    @property
    def agg_items(self) -> list[tuple[str, int]]:
        """(output name, aggregate index) of the SELECT's aggregate items, in order."""
        return [(str(s["name"]), int(s["agg"])) for s in self.select if "agg" in s]


# ---------------------------------------------------------------------------- predicates


def pred_columns(p: Mapping[str, Any] | None) -> list[str]:
    """Columns a WHERE predicate reads (in first-use order)."""
    if not p:
        return []
    if p["op"] in ("and", "or"):
        return list(dict.fromkeys(c for a in p["args"] for c in pred_columns(a)))
    if p["op"] == "not":
        return pred_columns(p["arg"])
    return [str(p["col"])]


def eval_pred(p: Mapping[str, Any] | None, value: Any) -> bool | None:
    """A predicate on one row (or one group's aggregates: ``value(key)`` gives the exact value
    of a column name or an aggregate index, None for SQL NULL), in SQL's three-valued logic:
    True, False or None (unknown; HAVING keeps a group only on True). Constants compare
    exactly (decimals)."""
    if not p:
        return True
    op = p["op"]
    if op in ("and", "or"):
        got = [eval_pred(a, value) for a in p["args"]]
        decisive = op == "or"  # True decides an OR, False an AND
        if decisive in got:
            return decisive
        return None if None in got else not decisive
    if op == "not":
        inner = eval_pred(p["arg"], value)
        return None if inner is None else not inner
    key = p["col"] if "col" in p else int(p["agg"])
    x = value(key)
    if x is None:
        return None

    def const(v: str) -> Any:
        return v if isinstance(x, str) else parse_decimal(v)

    if op == "in":
        return x in {const(v) for v in p["values"]}
    if op == "between":
        return bool(const(p["low"]) <= x <= const(p["high"]))
    c, v = p["cmp"], const(p["value"])
    return bool({"=": x == v, "<>": x != v, "<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[c])


# ---------------------------------------------------------------------------- groups


def group_labels(plan: Plan, schema: Mapping[str, Column]) -> list[tuple[str, ...]]:
    """Every group (a tuple of labels, GROUP BY order), row-major; [()] without GROUP BY."""
    return list(itertools.product(*(schema[g].domain for g in plan.group_by)))


# ---------------------------------------------------------------------------- compiling


def compile_query(sql: str, catalog: Catalog) -> Plan:
    """Parse ``sql`` and check it against ``catalog``; QueryError (one line) if refused."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    text = sql.strip().rstrip(";")
    if not text:
        raise MalformedSQL("empty query")
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except (ParseError, TokenError) as e:
        raise MalformedSQL(_first_line(str(e))) from None
    if len(trees) != 1:
        raise UnsupportedSQL("more than one statement")
    tree = trees[0]
    if not isinstance(tree, exp.Select):
        statements = (
            exp.Query,
            exp.Insert,
            exp.Update,
            exp.Delete,
            exp.Create,
            exp.Drop,
            exp.Command,
            exp.Merge,
        )
        if isinstance(tree, statements):
            raise UnsupportedSQL(f"{_kind(tree)} (only SELECT queries)")
        raise MalformedSQL(f"not a SELECT statement: {_first_line(text)[:60]}")
    _refuse_constructs(tree)
    return _Compiler(catalog).select(tree)


def _first_line(msg: str) -> str:
    line = msg.strip().splitlines()[0] if msg.strip() else "cannot parse"
    return line.replace("\x1b[4m", "").replace("\x1b[0m", "")


def _kind(node: Any) -> str:
    return type(node).__name__.upper()


def _refuse_constructs(tree: Any) -> None:
    """Clauses and nodes outside the subset, named as the user wrote them."""
    from sqlglot import exp

    clauses = [
        ("with", "WITH (common table expressions)"),
        ("order", "ORDER BY"),
        ("limit", "LIMIT"),
        ("offset", "OFFSET"),
        ("distinct", "SELECT DISTINCT"),
        ("qualify", "QUALIFY"),
        ("windows", "WINDOW"),
    ]
    for key, name in clauses:
        if tree.args.get(key):
            raise UnsupportedSQL(name)
    named: list[tuple[type, str]] = [
        (exp.Window, "window function OVER"),
        (exp.Subquery, "subquery"),
        (exp.Union, "UNION"),
        (exp.Intersect, "INTERSECT"),
        (exp.Except, "EXCEPT"),
        (exp.Lateral, "LATERAL"),
        (exp.Unnest, "UNNEST"),
        (exp.Distinct, "DISTINCT"),
        (exp.Case, "CASE"),
        (exp.Cast, "CAST"),
        (exp.Is, "IS [NOT] NULL (tables hold no NULLs)"),
        (exp.Like, "LIKE"),
        (exp.ILike, "ILIKE"),
        (exp.Exists, "EXISTS"),
    ]
    for node in tree.walk():
        for cls, name in named:
            if isinstance(node, cls):
                raise UnsupportedSQL(name)
        if isinstance(node, exp.Select) and node is not tree:
            raise UnsupportedSQL("subquery")


class _Compiler:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = {k: {c.name: c for c in v} for k, v in catalog.items()}
        self.aliases: dict[str, str] = {}  # alias or name -> table
        self.tables: list[str] = []
        self.aggs: list[dict[str, Any]] = []
        self.alias_aggs: dict[str, int] = {}  # SELECT alias -> aggregate index (for HAVING)
        self.used: list[str] = []

    # ---- tables and columns ------------------------------------------------------------

    def _table(self, node: Any) -> str:
        from sqlglot import exp

        if not isinstance(node, exp.Table) or not node.name:
            raise UnsupportedSQL(f"FROM {node.sql(dialect='duckdb')} (a table name)")
        if node.args.get("db") or node.args.get("catalog"):
            raise UnsupportedSQL("qualified table names (schema.table)")
        name = node.name
        if name not in self.catalog:
            raise UnknownTable(name, sorted(self.catalog))
        alias = node.alias or name
        for key in {alias, name}:
            if key in self.aliases and self.aliases[key] != name:
                raise QueryError(f"table alias {key!r} is used twice")
            self.aliases[key] = name
        if name in self.tables:
            raise JoinRefused(f"table {name!r} is joined with itself")
        self.tables.append(name)
        return name

    @property
    def joined(self) -> bool:
        return len(self.tables) > 1

    def column(self, node: Any) -> tuple[str, Column]:
        """(plan name, declared column) of a column reference."""
        from sqlglot import exp

        if not isinstance(node, exp.Column):
            raise UnsupportedSQL(f"expression {node.sql(dialect='duckdb')} (a column name)")
        name, qual = node.name, node.table
        if qual:
            if qual not in self.aliases:
                raise UnknownTable(qual, sorted(self.aliases))
            table = self.aliases[qual]
        else:
            having = [t for t in self.tables if name in self.catalog[t]]
            if len(having) > 1:
                raise QueryError(f"column {name!r} is ambiguous: qualify it ({', '.join(having)})")
            table = having[0] if having else self.tables[0]
        cols = self.catalog[table]
        if name not in cols:
            raise UnknownColumn(table, name, list(cols))
        return (f"{table}.{name}" if self.joined else name), cols[name]

    def _use(self, name: str, col: Column) -> None:
        if col.type != "id" and name not in self.used:
            self.used.append(name)

    # ---- the statement -----------------------------------------------------------------

    def select(self, tree: Any) -> Plan:
        from sqlglot import exp

        src = tree.args.get("from_") or tree.args.get("from")
        if src is None:
            raise UnsupportedSQL("SELECT without FROM")
        self._table(src.this)
        joins = tree.args.get("joins") or []
        on: tuple[str, ...] = ()
        if len(joins) > 1:
            raise UnsupportedSQL("more than one JOIN")
        if joins:
            on = self._join(joins[0])
        self.where = self.pred(tree.args["where"].this) if tree.args.get("where") else None
        group = tree.args.get("group")
        group_by: list[str] = []
        if group is not None:
            for g in group.expressions:
                if isinstance(g, exp.Literal):
                    raise UnsupportedSQL("GROUP BY position (name the column)")
                gname, gcol = self.column(g)
                if gcol.type != "cat":
                    raise TypeMismatch(
                        gname,
                        f"GROUP BY {gname}: only categorical columns "
                        f"with a declared domain can group (it is {gcol.type})",
                    )
                if gname not in group_by:
                    group_by.append(gname)
                    self._use(gname, gcol)
            for key in ("rollup", "cube", "grouping_sets"):
                if group.args.get(key):
                    raise UnsupportedSQL(key.upper().replace("_", " "))
        n_groups = 1
        for g in group_by:
            n_groups *= len(self._col_by_plan_name(g).domain)
        if n_groups > MAX_GROUPS:
            raise QueryError(f"GROUP BY makes {n_groups} groups; at most {MAX_GROUPS}")
        select: list[dict[str, Any]] = []
        for item in tree.expressions:
            select.append(self._item(item, group_by))
        if not any("agg" in s for s in select):
            raise UnsupportedSQL("a SELECT without aggregates (dnode answers aggregates only)")
        having = self.hpred(tree.args["having"].this) if tree.args.get("having") else None
        return Plan(
            kind="join" if self.joined else "aggregate",
            tables=tuple(self.tables),
            columns=tuple(self.used),
            aggs=tuple(self.aggs),
            select=tuple(select),
            where=self.where,
            group_by=tuple(group_by),
            having=having,
            on=on,
        )

    def _col_by_plan_name(self, name: str) -> Column:
        if self.joined:
            t, c = name.split(".", 1)
            return self.catalog[t][c]
        return self.catalog[self.tables[0]][name]

    def _join(self, j: Any) -> tuple[str, str]:
        from sqlglot import exp

        if j.args.get("using"):
            raise UnsupportedSQL("JOIN ... USING (write JOIN ... ON a.id = b.id)")
        side, kind = (j.args.get("side") or "").upper(), (j.args.get("kind") or "").upper()
        if side or kind not in ("", "INNER"):
            raise UnsupportedSQL(f"{' '.join(x for x in (side, kind) if x)} JOIN (inner only)")
        self._table(j.this)
        cond = j.args.get("on")
        if cond is None:
            raise UnsupportedSQL("JOIN without ON (a cross join)")
        if not (
            isinstance(cond, exp.EQ)
            and isinstance(cond.this, exp.Column)
            and isinstance(cond.expression, exp.Column)
        ):
            raise JoinRefused(f"ON {cond.sql(dialect='duckdb')}: only a.id = b.id joins")
        a, ca = self.column(cond.this)
        b, cb = self.column(cond.expression)
        if a.split(".")[0] == b.split(".")[0]:
            raise JoinRefused(f"ON {cond.sql(dialect='duckdb')} compares one table with itself")
        for name, col in ((a, ca), (b, cb)):
            if col.type != "id":
                raise JoinRefused(
                    f"{name} is not an identifier column (it is {col.type}); "
                    "joins match identifier columns only"
                )
        if a.split(".")[0] != self.tables[0]:
            a, b = b, a
        return a, b

    # ---- SELECT items and aggregates ----------------------------------------------------

    def _item(self, item: Any, group_by: list[str]) -> dict[str, Any]:
        from sqlglot import exp

        node, alias = (item.this, item.alias) if isinstance(item, exp.Alias) else (item, "")
        if isinstance(node, exp.Star):
            raise UnsupportedSQL("SELECT * (name aggregates)")
        if isinstance(node, exp.Column):
            name, _ = self.column(node)
            if name not in group_by:
                raise QueryError(f"column {name!r} must be in GROUP BY or inside an aggregate")
            return {"name": alias or node.name, "group": name}
        i = self.agg(node)
        out = alias or node.sql(dialect="duckdb").lower()
        if alias:
            self.alias_aggs[alias] = i
        return {"name": out, "agg": i}

    def agg(self, node: Any) -> int:
        a = self._agg(node)
        if a not in self.aggs:
            self.aggs.append(a)
        return self.aggs.index(a)

    def _agg(self, node: Any) -> dict[str, Any]:
        from sqlglot import exp

        if isinstance(node, exp.WithinGroup):
            inner, order = node.this, node.expression
            if not isinstance(inner, exp.PercentileCont):
                raise UnsupportedSQL(f"{_fname(inner)} WITHIN GROUP")
            cols = order.expressions if isinstance(order, exp.Order) else []
            if len(cols) != 1 or cols[0].args.get("desc"):
                raise UnsupportedSQL("WITHIN GROUP needs ORDER BY one column, ascending")
            return self._quantile(cols[0].this, inner.this)
        if isinstance(node, exp.PercentileCont):
            return self._quantile(node.this, node.expression)
        if isinstance(node, exp.Median):
            return self._quantile(node.this, None)
        if isinstance(node, exp.Count):
            arg = node.this
            if arg is None or isinstance(arg, exp.Star):
                return {"fn": "count"}
            name, col = self.column(arg)  # COUNT(col): no NULLs, the same as COUNT(*)
            self._use(name, col)  # named: in the task's schema, so the text recompiles there
            return {"fn": "count"}
        fn = _FN.get(type(node).__name__)
        if fn is None and isinstance(node, exp.Anonymous):
            fn = {"var": "var_samp"}.get(str(node.name).lower())
            args = list(node.expressions)
        else:
            args = [x for x in (node.args.get("this"), node.args.get("expression")) if x]
        if fn is None:
            if isinstance(node, (exp.Column, exp.Literal)):
                raise UnsupportedSQL(f"{node.sql(dialect='duckdb')} outside an aggregate")
            what = "aggregate" if isinstance(node, exp.AggFunc) else "expression"
            raise UnsupportedSQL(f"{what} {_fname(node)}")
        want = 2 if fn in TWO_COL else 1
        if len(args) != want:
            raise QueryError(f"{fn.upper()} takes {want} column(s)")
        names = [self._numeric(a, fn) for a in args]
        out: dict[str, Any] = {"fn": fn, "col": names[0]}
        if want == 2:
            out["col2"] = names[1]
        return out

    def _numeric(self, node: Any, fn: str) -> str:
        from sqlglot import exp

        if not isinstance(node, exp.Column):
            raise UnsupportedSQL(
                f"expression {node.sql(dialect='duckdb')} inside {fn.upper()} (aggregate a column)"
            )
        name, col = self.column(node)
        if col.type not in NUMERIC:
            raise TypeMismatch(name, f"{fn.upper()}({name}): {name} is {col.type}, not numeric")
        self._use(name, col)
        return name

    def _quantile(self, col: Any, q: Any) -> dict[str, Any]:
        qs = "0.5" if q is None else self._const_number(q, "the quantile")
        if not 0 <= parse_decimal(qs) <= 1:
            raise QueryError(f"quantile {qs} is not in [0, 1]")
        return {"fn": "quantile", "col": self._numeric(col, "quantile"), "q": qs}

    # ---- predicates --------------------------------------------------------------------

    def pred(self, node: Any) -> dict[str, Any]:
        from sqlglot import exp

        if isinstance(node, exp.Paren):
            return self.pred(node.this)
        if isinstance(node, (exp.And, exp.Or)):
            op = "and" if isinstance(node, exp.And) else "or"
            args: list[dict[str, Any]] = []
            for side in (node.this, node.expression):
                p = self.pred(side)
                args += p["args"] if p["op"] == op else [p]
            return {"op": op, "args": args}
        if isinstance(node, exp.Not):
            return {"op": "not", "arg": self.pred(node.this)}
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest"):
                raise UnsupportedSQL("subquery")
            name, col = self._filtered(node.this)
            vals = [self._const(v, name, col, "=") for v in node.expressions]
            if not vals:
                raise MalformedSQL("IN () needs constants")
            return {"op": "in", "col": name, "values": vals}
        if isinstance(node, exp.Between):
            name, col = self._filtered(node.this)
            lo = self._const(node.args["low"], name, col, "<=")
            hi = self._const(node.args["high"], name, col, "<=")
            return {"op": "between", "col": name, "low": lo, "high": hi}
        cmp = _CMP.get(type(node).__name__)
        if cmp is None:
            raise UnsupportedSQL(f"condition {node.sql(dialect='duckdb')}")
        left, right = node.this, node.expression
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            raise UnsupportedSQL("comparison of two columns (compare a column with a constant)")
        if not isinstance(left, exp.Column):
            left, right, cmp = right, left, _FLIP[cmp]
        name, col = self._filtered(left)
        return {"op": "cmp", "col": name, "cmp": cmp, "value": self._const(right, name, col, cmp)}

    def _filtered(self, node: Any) -> tuple[str, Column]:
        name, col = self.column(node)
        if col.type == "id":
            raise TypeMismatch(name, f"{name} is an identifier column: it cannot be filtered")
        self._use(name, col)
        return name, col

    def _const(self, node: Any, name: str, col: Column, cmp: str) -> str:
        from sqlglot import exp

        if col.type == "cat":
            if cmp not in ("=", "<>"):
                raise TypeMismatch(name, f"{name} is categorical: it has no order ({cmp})")
            if not isinstance(node, (exp.Literal, exp.Neg)):
                raise UnsupportedSQL(f"expression {node.sql(dialect='duckdb')} (a constant)")
            label = (
                node.sql(dialect="duckdb").strip("'")
                if not (isinstance(node, exp.Literal) and node.is_string)
                else str(node.this)
            )
            if label not in col.domain:
                raise TypeMismatch(
                    name,
                    f"{name} is categorical {list(col.domain)}; "
                    f"{node.sql(dialect='duckdb')} is not in its domain",
                )
            return label
        if isinstance(node, exp.Literal) and node.is_string:
            raise TypeMismatch(
                name, f"{name} is {col.type}; compared with the text {node.sql(dialect='duckdb')}"
            )
        return self._const_number(node, name)

    def _const_number(self, node: Any, what: str) -> str:
        from sqlglot import exp

        neg = False
        while isinstance(node, (exp.Neg, exp.Paren)):
            neg, node = (not neg) if isinstance(node, exp.Neg) else neg, node.this
        if not isinstance(node, exp.Literal) or node.is_string:
            raise UnsupportedSQL(f"{node.sql(dialect='duckdb')} where {what} needs a number")
        try:
            v = parse_decimal(str(node.this))
        except ValueError as e:
            raise MalformedSQL(str(e)) from None
        return _dec(-v if neg else v)

    def hpred(self, node: Any) -> dict[str, Any]:
        """A HAVING predicate: like WHERE, over aggregates (or SELECT aliases of them)."""
        from sqlglot import exp

        if isinstance(node, exp.Paren):
            return self.hpred(node.this)
        if isinstance(node, (exp.And, exp.Or)):
            op = "and" if isinstance(node, exp.And) else "or"
            return {"op": op, "args": [self.hpred(node.this), self.hpred(node.expression)]}
        if isinstance(node, exp.Not):
            return {"op": "not", "arg": self.hpred(node.this)}
        if isinstance(node, exp.In):
            return {
                "op": "in",
                "agg": self._hagg(node.this),
                "values": [self._const_number(v, "HAVING") for v in node.expressions],
            }
        if isinstance(node, exp.Between):
            return {
                "op": "between",
                "agg": self._hagg(node.this),
                "low": self._const_number(node.args["low"], "HAVING"),
                "high": self._const_number(node.args["high"], "HAVING"),
            }
        cmp = _CMP.get(type(node).__name__)
        if cmp is None:
            raise UnsupportedSQL(f"condition {node.sql(dialect='duckdb')} in HAVING")
        left, right = node.this, node.expression
        if _is_const(left):
            left, right, cmp = right, left, _FLIP[cmp]
        return {
            "op": "cmp",
            "agg": self._hagg(left),
            "cmp": cmp,
            "value": self._const_number(right, "HAVING"),
        }

    def _hagg(self, node: Any) -> int:
        from sqlglot import exp

        if isinstance(node, exp.Column) and not node.table and node.name in self.alias_aggs:
            return self.alias_aggs[node.name]
        if isinstance(node, exp.Column):
            raise UnsupportedSQL(f"column {node.sql(dialect='duckdb')} in HAVING (use WHERE)")
        return self.agg(node)


def _is_const(node: Any) -> bool:
    from sqlglot import exp

    while isinstance(node, (exp.Neg, exp.Paren)):
        node = node.this
    return isinstance(node, exp.Literal)


def _fname(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Func):
        return str(node.sql_name())
    return str(node.sql(dialect="duckdb"))


def _dec(x: Fraction) -> str:
    if x.denominator == 1:
        return str(int(x))
    return format(Decimal(x.numerator) / Decimal(x.denominator), "f")


_FN = {
    "Sum": "sum",
    "Avg": "avg",
    "Variance": "var_samp",
    "VariancePop": "var_pop",
    "Stddev": "stddev_samp",
    "StddevSamp": "stddev_samp",
    "StddevPop": "stddev_pop",
    "Min": "min",
    "Max": "max",
    "Corr": "corr",
    "CovarPop": "covar_pop",
    "CovarSamp": "covar_samp",
}
_CMP = {"EQ": "=", "NEQ": "<>", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
