"""The ``query`` program: one SQL aggregate plan (scheduler.programs.query.plan) over the UNION
ALL of every owner's table, in MPC (kernel: ``node.engines.mpc.kernels.query``).

Owners encode every column the plan reads, numeric ones exactly (``x * 10**scale``) and
categorical ones one-hot. The kernel computes, in MPC, a 0/1 row mask per group: the WHERE
predicate (comparisons with constants via secure less-than on the declared ranges; equality
and IN on categorical columns are sums of one-hot entries, no comparison) times the group's
one-hot indicator. It opens, per group, only the sufficient statistics the aggregates need:
the group size, masked sums, sums of squares and cross products, the extremes of the masked
column (masked-out rows are moved just outside the declared range first) and the order
statistics of a quantile (a secure binary search whose opened bits spell the answer).
``finish`` turns them into the answer exactly (Fractions), with DuckDB's definitions.

What it reveals: the group sizes after WHERE (every group, also one HAVING drops) and the
sufficient statistics above, to the committee (or, with a private result, to the requester
only); HAVING is evaluated on them in ``finish``, so the on-chain result holds only the groups
that pass it (a dropped group's row is zeros).

With ``--epsilon``/``--rho``: the sizes and sums are opened with discrete Laplace noise
sampled in the MPC, and a MIN, MAX or quantile column opens no extreme and runs no search:
per group, a noisy histogram of ``dp_bins`` equal-width bins over its declared range
(stats.OrderStat's method, Gillenwater, Joseph, Kulesza, "Differentially private quantiles",
ICML 2021, their baseline), every MIN/MAX/quantile read off its noisy CDF
(stats.spec.cdf_quantiles).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.dp import Release, dp_target
from dnode.scheduler.programs.query.errors import QueryError
from dnode.scheduler.programs.query.plan import (
    Plan,
    compile_query,
    eval_pred,
    group_labels,
)
from dnode.scheduler.programs.registry import (
    MAX_RESULT_VALUES,
    Arg,
    Output,
    ProgramSpec,
    register,
)
from dnode.scheduler.programs.schema import Column, parse_decimal
from dnode.scheduler.programs.stats.spec import (
    DP_BINS,
    DP_BINS_ARG,
    MAX_DP_BINS,
    cdf_quantiles,
    clip_bits,
    dp_edges,
    quantile,
    sqrt,
)

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.tables import Table

KERNEL = "dnode.node.engines.mpc.kernels.query"
MAX_FIELD_BITS = 128
SQUARES = ("var_samp", "var_pop", "stddev_samp", "stddev_pop")
CROSS = ("corr", "covar_pop", "covar_samp")


def plan_of(params: TaskView) -> Plan:
    return Plan.from_dict(params.args.get("plan"))


def schema_map(params: TaskView) -> dict[str, Column]:
    return {c.name: c for c in params.columns}


class Needs:
    """What the kernel must compute for a plan: the sufficient statistics per group."""

    def __init__(self, plan: Plan, schema: Mapping[str, Column]) -> None:
        cols = list(plan.columns)
        self.cols = cols
        self.sum: list[str] = []
        self.sumsq: list[str] = []
        self.cross: list[tuple[str, str]] = []
        self.min: list[str] = []
        self.max: list[str] = []
        self.quantile: dict[str, list[str]] = {}
        for a in plan.aggs:
            fn, c = a["fn"], a.get("col")
            if fn == "count":
                continue
            if fn in ("min", "max"):
                _add(self.min if fn == "min" else self.max, c)
            elif fn == "quantile":
                qs = self.quantile.setdefault(str(c), [])
                if a["q"] not in qs:
                    qs.append(str(a["q"]))
            else:
                _add(self.sum, c)
                if fn in SQUARES:
                    _add(self.sumsq, c)
                if fn in CROSS:
                    c2 = str(a["col2"])
                    _add(self.sum, c2)
                    _add(self.sumsq, c)
                    _add(self.sumsq, c2)
                    pair = (str(c), c2) if cols.index(str(c)) <= cols.index(c2) else (c2, str(c))
                    if pair not in self.cross:
                        self.cross.append(pair)
        order = {c: i for i, c in enumerate(cols)}
        self.sum.sort(key=order.__getitem__)
        self.sumsq.sort(key=order.__getitem__)

    @property
    def ordered(self) -> list[str]:
        """The columns a MIN, MAX or quantile reads (with DP: one noisy histogram each)."""
        want = {*self.min, *self.max, *self.quantile}
        return [c for c in self.cols if c in want]

    @property
    def moments(self) -> int:
        return 2 if self.cross else 1 if (self.sumsq or self.sum) else 0


def _add(xs: list[str], c: Any) -> None:
    if str(c) not in xs:
        xs.append(str(c))


class Query(ProgramSpec):
    name = "query"
    family = "query"
    capability = "mpc"
    kernel = KERNEL
    description = "a SQL aggregate (WHERE, GROUP BY, HAVING) over owners' tables (dnode query)"
    args = (
        Arg("sql", "str", "the query text (dnode query builds the plan)", required=True),
        Arg("plan", "json", "the checked plan (scheduler.programs.query.plan)", required=True),
        DP_BINS_ARG,
    )
    input_types = ("int", "fixed", "cat", "id")
    max_columns = 32
    reveals = (
        "per group (every domain combination): the group size after WHERE and the sufficient "
        "statistics of its aggregates (sums, sums of squares/products, extremes, order "
        "statistics; with DP, noisy sizes, sums and histograms instead); HAVING is applied "
        "to them afterwards"
    )
    cost = "WHERE: one secure comparison per row and constant; one product per row and group"
    # group sizes and sums noised in the MPC (COUNT/SUM/AVG/VAR/STDDEV/COVAR/CORR); MIN, MAX
    # and quantiles read off a noisy histogram per group and column (as stats.OrderStat)
    dp = True

    # ---- validation --------------------------------------------------------------------

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        plan = plan_of(params)
        if plan.kind != "aggregate":
            raise QueryError(f"program {self.name} runs aggregate plans, not {plan.kind!r}")
        got = compile_query(str(params.args["sql"]), {plan.tables[0]: params.columns})
        if got.to_dict() != plan.to_dict():
            raise QueryError("the plan does not match the query text (compile it again)")
        names = [c.name for c in params.columns if c.type != "id"]
        if names != list(plan.columns):
            raise QueryError(f"the task's columns {names} are not the plan's {list(plan.columns)}")
        n = self.values(params)
        if n > MAX_RESULT_VALUES and not params_result_key(params):
            raise QueryError(
                f"the answer has {n} values; at most {MAX_RESULT_VALUES} fit the on-chain result: "
                "ask for a private result (--private-result) or fewer groups/aggregates"
            )
        if params.args.get("dp_bins") is not None:
            if dp_target(params.args) is None:
                raise QueryError("--dp-bins needs --epsilon or --rho")
            if not 1 <= int(params.args["dp_bins"]) <= MAX_DP_BINS:
                raise QueryError(f"dp_bins must be 1..{MAX_DP_BINS}")
        self.field_bits(params)

    # ---- differential privacy ----------------------------------------------------------

    def dp_releases(self, params: TaskView) -> list[Release]:
        """Group sizes (when WHERE or GROUP BY makes them secret) and the per-group sums,
        squares and cross products. One changed row leaves one group and joins another (or
        the same): L1 2 for the sizes, 2 x the largest |contribution| of each statistic for
        the sums (values clipped to the declared ranges inside the MPC)."""
        plan = plan_of(params)
        sch = schema_map(params)
        need = Needs(plan, sch)
        groups = len(group_labels(plan, sch))
        out = []
        if plan.group_by or plan.where is not None:
            out.append(Release("count", groups, 2))
        per = [sch[c].bound for c in need.sum] + [sch[c].bound ** 2 for c in need.sumsq]
        per += [sch[a].bound * sch[b].bound for a, b in need.cross]
        if per:
            out.append(Release("stats", groups * len(per), 2 * sum(per)))
        # MIN, MAX, quantiles: per column a histogram of groups x bins counts; one changed
        # row leaves one (group, bin) and joins another (or leaves the range): L1 2 each
        for c, edges in self.hist_edges(params).items():
            out.append(Release(hist_name(c), groups * (len(edges) - 1), 2))
        return out

    def hist_edges(self, params: TaskView) -> dict[str, list[int]]:
        return hist_edges(params)

    def values(self, params: TaskView) -> int:
        shape = self.out_shape(params)
        return shape[0] * shape[1]

    def private_refusal(self, params: TaskView) -> str | None:
        if Needs(plan_of(params), schema_map(params)).quantile and not self.hist_edges(params):
            return "its quantile search opens group sizes and one bit per step to the committee"
        return super().private_refusal(params)

    def field_bits(self, params: TaskView) -> int:
        n = params.max_rows
        sch = schema_map(params)
        need = Needs(plan_of(params), sch)
        b = max((sch[c].bound for c in plan_of(params).columns), default=1)
        top = n * b
        if need.moments:
            top = max(top, n * b * b)
        bits = max(16, top.bit_length() + 2, self.cmp_bits(params))
        plan = self.dp_plan(params)
        if plan is not None:  # the noisy value v + Z must fit: |Z| < 2**noise_bits
            bits = max(bits, max(top.bit_length(), plan.noise_bits) + 3)
        if bits > MAX_FIELD_BITS:
            raise QueryError(
                f"the declared ranges with max_rows={n} need {bits}-bit secure integers (at most "
                f"{MAX_FIELD_BITS}); narrow the ranges or lower max_rows"
            )
        return bits

    def cmp_bits(self, params: TaskView) -> int:
        """Bits of the secure type every comparison runs on: differences x - t with t clamped
        to [lo, hi + 1], masked values in [lo - 1, hi + 1], and counts up to max_rows."""
        plan = plan_of(params)
        sch = schema_map(params)
        need = Needs(plan, sch)
        cmp_cols = {c for c in _where_columns(plan) if sch[c].type != "cat"}
        cmp_cols |= set(need.min) | set(need.max) | set(need.quantile)
        if not cmp_cols:
            return 0
        span = max(sch[c].enc_hi - sch[c].enc_lo for c in cmp_cols) + 2
        return max(span.bit_length(), params.max_rows.bit_length()) + 3

    # ---- owner side --------------------------------------------------------------------

    def layout_cols(self, params: TaskView) -> list[tuple[Column, int]]:
        """(column, offset in the encoded row) for every column the plan reads."""
        sch = schema_map(params)
        out, at = [], 0
        for name in plan_of(params).columns:
            c = sch[name]
            out.append((c, at))
            at += len(c.domain) if c.type == "cat" else 1
        return out

    def width(self, params: TaskView) -> int:
        """Encoded integers per row (1 when the plan reads no column: a constant 1, so the
        row count still travels as the shares' shape)."""
        w = sum(len(c.domain) if c.type == "cat" else 1 for c, _ in self.layout_cols(params))
        return max(1, w)

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        data = {c.name: vals for c, vals in zip(table.columns, table.data, strict=True)}
        cols = self.layout_cols(params)
        out: list[int] = []
        for i in range(table.rows):
            for c, _ in cols:
                v = int(data[c.name][i])
                out += [int(j == v) for j in range(len(c.domain))] if c.type == "cat" else [v]
            if not cols:
                out.append(1)
        return out

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        bounds: list[int] = []
        for c, _ in self.layout_cols(params):
            bounds += [1] * len(c.domain) if c.type == "cat" else [max(1, c.bound)]
        bounds = bounds or [1]
        return tuple(bounds), Needs(plan_of(params), schema_map(params)).moments

    # ---- engine side -------------------------------------------------------------------

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        plan = plan_of(params)
        sch = schema_map(params)
        at = {c.name: off for c, off in self.layout_cols(params)}
        need = Needs(plan, sch)
        groups = [
            [at[g] + sch[g].domain.index(lab) for g, lab in zip(plan.group_by, labels,
                                                                strict=True)]
            for labels in group_labels(plan, sch)
        ]  # fmt: skip
        rng = {c: [sch[c].enc_lo, sch[c].enc_hi] for c in plan.columns if sch[c].type != "cat"}
        hist = self.hist_edges(params)
        if hist:  # DP: no exact extreme or search; noisy histograms instead
            need.min, need.max, need.quantile = [], [], {}
        return {
            "width": self.width(params),
            "where": _kpred(plan.where, sch, at),
            "groups": groups if plan.group_by else [],
            "onehot": [
                [at[c.name], len(c.domain)] for c, _ in self.layout_cols(params) if c.type == "cat"
            ],  # fmt: skip
            "sum": [at[c] for c in need.sum],
            "sumsq": [at[c] for c in need.sumsq],
            "cross": [[at[a], at[b]] for a, b in need.cross],
            "min": [[at[c], *rng[c]] for c in need.min],
            "max": [[at[c], *rng[c]] for c in need.max],
            "quantile": [[at[c], *rng[c], qs] for c, qs in need.quantile.items()],
            "cmp_bits": self.cmp_bits(params),
            # narrower comparisons where the values allow (cost grows with the bits): WHERE
            # compares x - t with |x - t| <= span, MIN/MAX values in [lo - 1, hi + 1]
            "where_bits": _span_bits(
                sch, [c for c in _where_columns(plan) if sch[c].type != "cat"], 0
            ),
            "ext_bits": _span_bits(sch, need.min + need.max, 2),
            "hist": [[hist_name(c), at[c], *rng[c], e] for c, e in hist.items()],
        } | self._dp_args(params, sch, at, need)

    def _dp_args(
        self, params: TaskView, sch: Mapping[str, Column], at: Mapping[str, int], need: Needs
    ) -> dict[str, Any]:
        plan = self.dp_plan(params)
        if plan is None:
            return {}
        summed = dict.fromkeys([*need.sum, *need.sumsq, *(c for p in need.cross for c in p)])
        clip = [[at[c], sch[c].enc_lo, sch[c].enc_hi] for c in summed]
        bits = clip_bits([sch[c] for c in summed]) if summed else 0
        return {"dp": plan.kernel_args(), "clip": clip, "clip_bits": bits}

    # ---- output ------------------------------------------------------------------------

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        plan = plan_of(params)
        return (len(group_labels(plan, schema_map(params))), 1 + len(plan.agg_items))

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        plan = plan_of(params)
        rows = tuple("|".join(g) or "all" for g in group_labels(plan, schema_map(params)))
        return rows, ("rows", *(name for name, _ in plan.agg_items))

    def check_output_size(self, params: TaskView) -> None:
        return None  # validate refuses a large public answer (a private one may be larger)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        plan = plan_of(params)
        sch = schema_map(params)
        need = Needs(plan, sch)
        groups = group_labels(plan, sch)
        stats = GroupStats(plan, sch, need, revealed, rows, len(groups), self.hist_edges(params))
        vals: list[Fraction] = []
        for g in range(len(groups)):
            n = stats.count[g]
            aggs = [stats.agg(a, g) for a in plan.aggs]  # None: SQL NULL
            keep = (n > 0 or not plan.group_by) and eval_pred(plan.having, aggs.__getitem__)
            row = [Fraction(n)] + [aggs[i] or Fraction(0) for _, i in plan.agg_items]
            vals += row if keep else [Fraction(-1)] + [Fraction(0)] * (len(row) - 1)
        return Output(tuple(vals), rows, *self.layout(params))


def hist_edges(params: TaskView) -> dict[str, list[int]]:
    """With DP: the encoded bin edges of every MIN/MAX/quantile column (stats.dp_edges)."""
    if dp_target(params.args) is None:
        return {}
    sch = schema_map(params)
    bins = int(params.args.get("dp_bins") or DP_BINS)
    return {c: dp_edges(sch[c], bins) for c in Needs(plan_of(params), sch).ordered}


def hist_name(c: str) -> str:
    """The release (and opened value) of column c's noisy histogram."""
    return f"bins:{c}"


def _span_bits(sch: Mapping[str, Column], cols: list[str], extra: int) -> int:
    """Bits of a secure comparison of differences up to max(hi - lo) + extra (0: none)."""
    if not cols:
        return 0
    return (max(sch[c].enc_hi - sch[c].enc_lo for c in cols) + extra).bit_length() + 2


def params_result_key(params: TaskView) -> str:
    return str(getattr(params, "result_key", "") or "")


def _where_columns(plan: Plan) -> list[str]:
    from dnode.scheduler.programs.query.plan import pred_columns

    return pred_columns(plan.where)


class GroupStats:
    """The opened sufficient statistics, decoded exactly, and the aggregates they give."""

    def __init__(
        self,
        plan: Plan,
        sch: Mapping[str, Column],
        need: Needs,
        r: Mapping[str, Any],
        rows: int,
        n_groups: int,
        hist: Mapping[str, list[int]] | None = None,
    ) -> None:
        self.sch, self.need = sch, need
        self.hist = dict(hist or {})
        # a noisy size (DP) may be negative: clamped at 0 (post-processing)
        self.count = [max(0, int(v)) for v in r["count"]] if "count" in r else [rows] * n_groups
        G = n_groups

        def per_group(key: str, names: list[Any]) -> list[dict[Any, int]]:
            if names and key not in r:  # DP: MIN/MAX come from the histograms instead
                return [{} for _ in range(G)]
            flat = [int(v) for v in r.get(key, [])]
            k = len(names)
            return [{names[j]: flat[g * k + j] for j in range(k)} for g in range(G)]

        self.sum = per_group("sum", need.sum)
        self.sumsq = per_group("sumsq", need.sumsq)
        self.cross = per_group("cross", need.cross)
        self.min = per_group("min", need.min)
        self.max = per_group("max", need.max)
        self.bins: list[dict[str, list[int]]] = [{} for _ in range(G)]
        for c, e in self.hist.items():  # DP: group-major, len(e) - 1 noisy counts per group
            b, flat = len(e) - 1, [int(v) for v in r[hist_name(c)]]
            for g in range(G):
                self.bins[g][c] = flat[g * b : (g + 1) * b]
        self.order: list[dict[tuple[str, int], int]] = [{} for _ in range(G)]
        qcols = list(need.quantile)
        for (e, g, k), v in zip(r.get("order_keys", []), r.get("order", []), strict=True):
            self.order[int(g)][(qcols[int(e)], int(k))] = int(v)

    def _s(self, c: str, g: int) -> Fraction:
        return Fraction(self.sum[g][c], 10 ** self.sch[c].scale)

    def _ss(self, c: str, g: int) -> Fraction:
        return Fraction(self.sumsq[g][c], 10 ** (2 * self.sch[c].scale))

    def _sxy(self, a: str, b: str, g: int) -> Fraction:
        key = (a, b) if (a, b) in self.cross[g] else (b, a)
        return Fraction(self.cross[g][key], 10 ** (self.sch[a].scale + self.sch[b].scale))

    def _cov(self, a: str, b: str, g: int, ddof: int) -> Fraction | None:
        n = self.count[g]
        if n - ddof <= 0:
            return None
        sxy = self._ss(a, g) if a == b else self._sxy(a, b, g)
        return (sxy - self._s(a, g) * self._s(b, g) / n) / (n - ddof)

    def _noisy_order(self, c: str, g: int, q: Any) -> Fraction | None:
        """DP: MIN (q 0), MAX (q 1) or a quantile of group g read off column c's noisy
        histogram (stats.cdf_quantiles); the rank uses the histogram's own clamped total, so
        MAX is the top of the highest bin holding a count. None (NULL): no count at all."""
        bins = self.bins[g][c]
        n = sum(max(0, v) for v in bins)
        if n == 0:
            return None
        return cdf_quantiles(self.sch[c], self.hist[c], bins, n, [str(q)])[0]

    def agg(self, a: Mapping[str, Any], g: int) -> Fraction | None:
        """One aggregate of group g (None: SQL NULL)."""
        fn, c, n = a["fn"], a.get("col"), self.count[g]
        if fn == "count":
            return Fraction(n)
        c = str(c)
        if n == 0:
            return None
        if fn == "sum":
            return self._s(c, g)
        if fn == "avg":
            return self._s(c, g) / n
        if fn in SQUARES:
            v = self._cov(c, c, g, 1 if fn.endswith("samp") else 0)
            if v is None:
                return None
            v = max(Fraction(0), v)  # >= 0 exactly; noisy sums (DP) may not be: post-processing
            return sqrt(v) if fn.startswith("stddev") else v
        if fn in ("min", "max", "quantile") and c in self.hist:
            return self._noisy_order(c, g, "0" if fn == "min" else "1" if fn == "max" else a["q"])
        if fn in ("min", "max"):
            col = self.sch[c]
            e = (self.min if fn == "min" else self.max)[g][c]
            return col.decode(min(max(e, col.enc_lo), col.enc_hi))  # clamp(max x) = max(clamp x)
        if fn == "quantile":
            h = (n - 1) * parse_decimal(str(a["q"]))
            lo, hi = math.floor(h) + 1, math.ceil(h) + 1
            col = self.sch[c]
            at = {k: col.decode(self.order[g][(c, k)]) for k in (lo, hi)}
            return quantile(n, str(a["q"]), at)
        c2 = str(a["col2"])
        if fn in ("covar_pop", "covar_samp"):
            v = self._cov(c, c2, g, 1 if fn == "covar_samp" else 0)
            return v
        # corr: covar_pop / (stddev_pop * stddev_pop); undefined for a constant column
        cxy, vx, vy = self._cov(c, c2, g, 0), self._cov(c, c, g, 0), self._cov(c2, c2, g, 0)
        if cxy is None or vx is None or vy is None or vx <= 0 or vy <= 0:
            return None
        return max(Fraction(-1), min(Fraction(1), cxy / sqrt(vx * vy)))  # noisy sums: in range


# ---------------------------------------------------------------------------- WHERE -> kernel


def _kpred(p: Mapping[str, Any] | None, sch: Mapping[str, Column], at: Mapping[str, int]) -> Any:
    """The WHERE predicate in the kernel's form, constants folded with the declared ranges:

    ``1``/``0`` (constant), ``{"lt": [offset, t]}`` = [x < t] (t an integer inside the range),
    ``{"hot": [offsets]}`` = a sum of one-hot entries, ``{"diff": [a, b]}`` = a - b (b <= a),
    ``{"sum": [...]}``, ``{"and": [...]}``, ``{"or": [...]}``, ``{"not": a}``."""
    if not p:
        return 1
    op = p["op"]
    if op in ("and", "or"):
        return _fold(op, [_kpred(a, sch, at) for a in p["args"]])
    if op == "not":
        return _not(_kpred(p["arg"], sch, at))
    col = sch[str(p["col"])]
    off = at[col.name]
    if col.type == "cat":
        labels = [p["value"]] if op == "cmp" else list(p["values"])
        hot = sorted({off + col.domain.index(v) for v in labels})
        node: Any = {"hot": hot}
        return _not(node) if op == "cmp" and p["cmp"] == "<>" else node
    scale = 10**col.scale

    def lt(t: int) -> Any:  # [x < t] for an integer t, folded against [lo, hi]
        if t <= col.enc_lo:
            return 0
        if t > col.enc_hi:
            return 1
        return {"lt": [off, t]}

    def le(v: Fraction) -> Any:  # [x <= v]
        return lt(math.floor(v * scale) + 1)

    def less(v: Fraction) -> Any:  # [x < v]
        return lt(math.ceil(v * scale))

    def between(a: Fraction, b: Fraction) -> Any:
        if a > b:
            return 0
        return _diff(le(b), less(a))

    if op == "between":
        return between(parse_decimal(p["low"]), parse_decimal(p["high"]))
    if op == "in":
        vals = sorted({parse_decimal(v) for v in p["values"]})
        return _fold("or", [between(v, v) for v in vals], disjoint=True)
    v, cmp = parse_decimal(p["value"]), p["cmp"]
    if cmp == "=":
        return between(v, v)
    if cmp == "<>":
        return _not(between(v, v))
    return {"<": less(v), "<=": le(v), ">": _not(le(v)), ">=": _not(less(v))}[cmp]


def _not(a: Any) -> Any:
    if isinstance(a, int):
        return 1 - a
    return a.get("not", {"not": a})


def _diff(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    if b == 0:
        return a
    return {"diff": [a, b]}


def _fold(op: str, args: list[Any], disjoint: bool = False) -> Any:
    absorb, unit = (0, 1) if op == "and" else (1, 0)
    if absorb in args:
        return absorb
    rest = [a for a in args if a != unit]
    if not rest:
        return unit
    if len(rest) == 1:
        return rest[0]
    if disjoint:  # IN over distinct constants: at most one holds, the OR is the sum
        return {"sum": rest}
    return {op: rest}


register(Query())
