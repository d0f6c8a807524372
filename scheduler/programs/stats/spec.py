"""Specs of the statistics family (kernel: ``node.engines.mpc.kernels.stats``).

Every program reads the table columns the task names. Owners encode numeric columns exactly
(``x * 10**scale``) and categorical ones as one-hot vectors; the kernel opens only the
sufficient statistics listed in ``reveals``; every node turns them into the same public output
with exact rational arithmetic (``finish``), matching numpy's definitions:

* ``variance``/``std``: population (numpy ``var``/``std`` with ``ddof=0``); ``covariance``:
  ``numpy.cov`` (``ddof=1`` by default); ``correlation``: ``numpy.corrcoef`` (an undefined
  correlation, a column with zero variance, is reported as 0);
* ``quantiles``/``median``: numpy's default linear interpolation between order statistics;
* ``histogram``: ``numpy.histogram`` bins (half-open, the last one closed) or category counts.

Order statistics (median, quantiles) are found by a secure binary search over the column's
declared range: each step opens one bit, "at least k values are <= v", and the path of those
bits is the order statistic itself, so nothing beyond the output is revealed. Minimum and
maximum use a secure tournament (MPyC's ``np_amin``/``np_amax``), which opens only the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.dp import Release
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.registry import Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import Column, parse_decimal

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.tables import Table

KERNEL = "dnode.node.engines.mpc.kernels.stats"
MAX_FIELD_BITS = 128
NUMERIC = ("int", "fixed")


def sqrt(x: Fraction) -> Fraction:
    """A square root to 40 significant digits (outputs are rounded to 18 decimals)."""
    if x <= 0:
        return Fraction(0)
    with localcontext() as ctx:
        ctx.prec = 60
        return Fraction((Decimal(x.numerator) / Decimal(x.denominator)).sqrt())


def order_ranks(n: int, qs: list[str]) -> list[int]:
    """1-based ranks of the order statistics numpy's linear quantiles at ``qs`` need."""
    ranks: set[int] = set()
    for q in qs:
        h = (n - 1) * parse_decimal(q)
        ranks |= {math.floor(h) + 1, math.ceil(h) + 1}
    return sorted(ranks)


def quantile(n: int, q: str, at: Mapping[int, Fraction]) -> Fraction:
    h = (n - 1) * parse_decimal(q)
    lo, hi = math.floor(h) + 1, math.ceil(h) + 1
    return at[lo] + (h - math.floor(h)) * (at[hi] - at[lo])


class Stat(ProgramSpec):
    """One statistic per column (or across columns, for covariance and correlation)."""

    family = "stats"
    capability = "mpc"
    kernel = KERNEL
    needs: tuple[str, ...] = ("sum",)  # what the kernel computes: sum, sumsq, gram, order, below
    qs: tuple[str, ...] = ()  # fixed quantiles (min 0, median 0.5, max 1)
    dp = True  # sums, sums of squares, Gram matrices, counts: noise on what the kernel opens

    # ---- validation --------------------------------------------------------------------

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        self.check_output_size(params)
        self.field_bits(params)  # a range the field cannot hold is refused before posting

    def field_bits(self, params: TaskView) -> int:
        n = params.max_rows
        b = max((c.bound for c in params.columns), default=1)
        # n * b: every sum, and each owner's influence witness (node.mpc.influence), which
        # bounds its column sums even when the kernel opens none (order statistics)
        need = n * b
        if {"sumsq", "gram"} & set(self.needs):
            need = max(need, n * b * b)
        bits = max(16, need.bit_length() + 2, self.cmp_bits(params))
        plan = self.dp_plan(params)
        if plan is not None:  # the noisy value v + Z must fit: |Z| < 2**noise_bits
            bits = max(bits, max(need.bit_length(), plan.noise_bits) + 3)
        if bits > MAX_FIELD_BITS:
            widest = max(params.columns, key=lambda c: c.bound)
            raise InvalidTaskParams(
                f"{self.name} cannot take column {widest.name!r}: its declared range "
                f"[{widest.lo}, {widest.hi}] with max_rows={n} needs {bits}-bit secure "
                f"integers (at most {MAX_FIELD_BITS}); narrow the range or lower max_rows"
            )
        return bits

    def cmp_bits(self, params: TaskView) -> int:
        """Bits of the secure type the kernel compares with (same field, cheaper than the
        full type): every difference it compares and every count must fit."""
        if not {"order", "extreme"} & set(self.needs):
            return 0
        span = max(c.enc_hi - c.enc_lo for c in params.columns)
        return max(span.bit_length(), params.max_rows.bit_length()) + 3

    # ---- kernel inputs -----------------------------------------------------------------

    def qlist(self, params: TaskView) -> list[str]:
        return list(self.qs)

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        got = super().influence(params)
        level = 2 if "gram" in self.needs else 1 if "sumsq" in self.needs else 0
        return None if got is None else (got[0], level)

    # ---- differential privacy ----------------------------------------------------------

    def dp_releases(self, params: TaskView) -> list[Release]:
        """Per opened statistic its L1 sensitivity when one row changes (values clipped to
        the declared ranges inside the MPC): sums |hi - lo| per column, sums of squares the
        span of x^2, the Gram matrix the span of every x_i x_j."""
        cols = params.columns
        out = []
        if "sum" in self.needs:
            out.append(Release("sum", len(cols), sum(c.enc_hi - c.enc_lo for c in cols)))
        if "sumsq" in self.needs:
            out.append(Release("sumsq", len(cols), sum(_span_sq(c) for c in cols)))
        if "gram" in self.needs:
            spans = [_span_prod(a, b) for a in cols for b in cols]
            out.append(Release("gram", len(spans), sum(spans)))
        return out

    def dp_kernel_args(self, params: TaskView) -> dict[str, Any]:
        plan = self.dp_plan(params)
        if plan is None:
            return {}
        return {
            "dp": plan.kernel_args(),
            "clip": {"lo": [c.enc_lo for c in params.columns],
                     "hi": [c.enc_hi for c in params.columns],
                     "bits": clip_bits(params.columns)},
        }  # fmt: skip

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        out: dict[str, Any] = {"width": self.width(params), "needs": list(self.needs)}
        out |= self.dp_kernel_args(params)
        if "extreme" in self.needs:
            out["cmp_bits"] = self.cmp_bits(params)
            out["which"] = "min" if self.qs == ("0",) else "max"
            out["lo"] = [c.enc_lo for c in params.columns]  # the opened extreme is clamped
            out["hi"] = [c.enc_hi for c in params.columns]
        if "order" in self.needs:
            out["cmp_bits"] = self.cmp_bits(params)
            out["q"] = self.qlist(params)
            out["lo"] = [c.enc_lo for c in params.columns]
            out["hi"] = [c.enc_hi for c in params.columns]
        return out

    def private_refusal(self, params: TaskView) -> str | None:
        if "order" in self.kernel_args(params)["needs"]:
            return "its secure search opens one bit of the answer to the committee per step"
        return super().private_refusal(params)

    # ---- output ------------------------------------------------------------------------

    def names(self, params: TaskView) -> tuple[str, ...]:
        return tuple(c.name for c in params.columns)

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(params.columns),)

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        raise InvalidTaskParams(f"{self.name} defines no output")

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if rows == 0:
            raise InvalidTaskParams(f"{self.name} over zero rows")
        vals = self.per_column(params, revealed, rows)
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return (self.names(params),)


def clip_bits(cols: Any) -> int:
    """Bits of the comparisons that clamp values to [lo, hi] in the MPC: values up to
    3 spans beyond the range are clamped; further out, a checked comparison aborts the
    session (an owner that shared them), like every range-checked comparison."""
    return max(c.enc_hi - c.enc_lo for c in cols).bit_length() + 3


def _span_sq(c: Any) -> int:
    """Largest change of x^2 for x in [lo, hi]."""
    lo, hi = c.enc_lo, c.enc_hi
    least = 0 if lo <= 0 <= hi else min(lo * lo, hi * hi)
    return max(lo * lo, hi * hi) - least


def _span_prod(a: Any, b: Any) -> int:
    """Largest change of x_a x_b over the declared box (x_a^2 on the diagonal)."""
    if a is b:
        return _span_sq(a)
    corners = [x * y for x in (a.enc_lo, a.enc_hi) for y in (b.enc_lo, b.enc_hi)]
    return max(corners) - min(corners)


def _sums(params: TaskView, r: Mapping[str, Any]) -> list[Fraction]:
    return [c.decode(int(v)) for c, v in zip(params.columns, r["sum"], strict=True)]


def _means(params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
    return [s / n for s in _sums(params, r)]


def _variances(params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
    out = []
    for c, m, sq in zip(params.columns, _means(params, r, n), r["sumsq"], strict=True):
        # exact sums give a variance >= 0; noisy ones may not (clamping is post-processing)
        out.append(max(Fraction(0), Fraction(int(sq), 10 ** (2 * c.scale)) / n - m * m))
    return out


def _order(params: TaskView, r: Mapping[str, Any]) -> dict[int, list[Fraction]]:
    return {
        int(k): [c.decode(int(v)) for c, v in zip(params.columns, row, strict=True)]
        for k, row in zip(r["ranks"], r["order"], strict=True)
    }


class Count(Stat):
    needs = ()
    dp = False  # the row count is public (every seat sees the shape of its shares)
    dp_refusal = "the row count is public anyway (every seat sees the shape of its shares)"
    input_types = ("int", "fixed", "cat", "id")
    reveals = "the number of rows (public anyway: every node sees the shape of its shares)"
    cost = "no secure operation"

    def width(self, params: TaskView) -> int:
        return 1

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        return [1] * table.rows  # one share per row: the count is the shares' public shape

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        return (1,), 0  # every encoded value is 1, whatever the columns' ranges

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        return [Fraction(n)] * len(params.columns)


class Sum(Stat):
    reveals = "per column: the sum"
    cost = "local additions, one opening"

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        return _sums(params, r)


class Mean(Stat):
    reveals = "per column: the sum (equivalent to the mean: the row count is public)"
    cost = "local additions, one opening"

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        return _means(params, r, n)


class Variance(Stat):
    needs = ("sum", "sumsq")
    squares = True
    reveals = "per column: the sum and the sum of squares (equivalent to mean and variance)"
    cost = "one secure product per value, one opening"

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (2, len(params.columns))

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if rows == 0:
            raise InvalidTaskParams(f"{self.name} over zero rows")
        vals = _means(params, revealed, rows) + _variances(params, revealed, rows)
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return (("mean", "variance"), self.names(params))


class Std(Stat):
    needs = ("sum", "sumsq")
    reveals = "per column: the sum and the sum of squares (equivalent to mean and std)"
    cost = "one secure product per value, one opening"

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        return [sqrt(v) for v in _variances(params, r, n)]


DP_BINS = 32  # default bins of the noisy histogram a DP order statistic is read from
MAX_DP_BINS = 1024
DP_BINS_ARG = Arg("dp_bins", "int", "with --epsilon/--rho: equal-width bins over the declared "
                  f"range of the noisy histogram the order statistic is read from (default "
                  f"{DP_BINS})")  # fmt: skip


def dp_edges(c: Column, bins: int) -> list[int]:
    """Encoded edges of ``bins`` equal-width bins over c's declared range: lo = e_0 < ... <
    e_B = hi + 1 (bin b holds e_b <= x < e_b+1; fewer bins when the range has fewer values)."""
    span = c.enc_hi - c.enc_lo + 1
    b = min(bins, span)
    return [c.enc_lo + (span * i) // b for i in range(b + 1)]


def cdf_quantiles(
    c: Column, edges: list[int], bins: Sequence[int], n: int, qs: Sequence[str]
) -> list[Fraction]:
    """Quantiles ``qs`` read off a noisy histogram (post-processing, shared by OrderStat and
    the query program): negative counts clamped at 0, numpy's rank h + 1 = q (n - 1) + 1
    located on the cumulative counts, linearly interpolated inside its bin, clamped to the
    declared range, decoded."""
    counts = [max(0, int(v)) for v in bins]
    out = []
    for q in qs:
        r = (n - 1) * parse_decimal(q) + 1
        below, v = Fraction(0), Fraction(edges[-1] - 1)
        for i, k in enumerate(counts):
            if k and below + k >= r:
                v = edges[i] + (r - below) / k * (edges[i + 1] - edges[i] - 1)
                break
            below += k
        out.append(min(max(v, Fraction(c.enc_lo)), Fraction(c.enc_hi)) / 10**c.scale)
    return out


class OrderStat(Stat):
    """Exact: a secure search (or tournament) opens the order statistic. With
    ``--epsilon``/``--rho``: one column; the kernel opens only a noisy histogram of
    ``dp_bins`` equal-width bins over the declared range (counts below each edge by secure
    comparisons, discrete Laplace noise sampled inside the MPC, sensitivity 2: one changed row
    leaves one bin and joins another) and every order statistic -- min, max, median, any
    quantile, all from the same histogram -- is read off its noisy CDF (post-processing:
    negative counts clamped at 0, linear interpolation inside the bin the rank falls in). The
    histogram/CDF method of Gillenwater, Joseph, Kulesza, "Differentially private quantiles"
    (ICML 2021, their baseline); error: up to one bin width plus the CDF noise, a sum of up to
    ``dp_bins`` noise values (standard deviation about sqrt(2 dp_bins) x scale rows)."""

    needs = ("order",)
    args: tuple[Arg, ...] = (DP_BINS_ARG,)
    dp = True  # a noisy histogram over the declared range; the quantiles are post-processing
    reveals = "per column: the order statistic(s) the output interpolates, nothing else"
    cost = "rows x bits(declared range) secure comparisons per column and order statistic"

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        at = _order(params, r)
        (q,) = self.qlist(params)
        return [
            quantile(n, q, {k: v[j] for k, v in at.items()}) for j in range(len(params.columns))
        ]

    # ---- differential privacy: a noisy histogram, read as a CDF -------------------------

    def _noisy(self, params: TaskView) -> bool:
        return self.dp_plan(params) is not None

    def validate(self, params: TaskView) -> None:
        if self._noisy(params):
            if len(params.columns) != 1:
                raise InvalidTaskParams(
                    f"{self.name} with --epsilon/--rho takes one column (one noisy histogram)"
                )
            b = int(params.args.get("dp_bins") or DP_BINS)
            if not 1 <= b <= MAX_DP_BINS:
                raise InvalidTaskParams(f"{self.name}: dp_bins must be 1..{MAX_DP_BINS}")
        elif params.args.get("dp_bins") is not None:
            raise InvalidTaskParams(f"{self.name}: --dp-bins needs --epsilon or --rho")
        super().validate(params)

    def dp_edges(self, params: TaskView) -> list[int]:
        """Encoded bin edges: lo = e_0 < ... < e_B = hi + 1 (bin b holds e_b <= x < e_b+1)."""
        return dp_edges(params.columns[0], int(params.args.get("dp_bins") or DP_BINS))

    def dp_releases(self, params: TaskView) -> list[Release]:
        # one changed row leaves one bin and joins another (or leaves the range): L1 2
        return [Release("bins", len(self.dp_edges(params)) - 1, 2)]

    def cmp_bits(self, params: TaskView) -> int:
        if not self._noisy(params):
            return super().cmp_bits(params)
        top = params.columns[0].bound + max(abs(e) for e in self.dp_edges(params))
        return max(top.bit_length(), params.max_rows.bit_length()) + 3

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        plan = self.dp_plan(params)
        if plan is None:
            return super().kernel_args(params)
        return {"width": 1, "needs": ["below"], "below": self.dp_edges(params),
                "cmp_bits": self.cmp_bits(params), "dp": plan.kernel_args()}  # fmt: skip

    def dp_quantiles(self, params: TaskView, bins: list[int], n: int) -> list[Fraction]:
        """Every quantile of ``qlist`` from the noisy bin counts (post-processing): numpy's
        rank h + 1 = q (n - 1) + 1 (n public) located on the cumulative clamped counts,
        linearly interpolated inside its bin, clamped to the declared range."""
        return cdf_quantiles(params.columns[0], self.dp_edges(params), bins, n, self.qlist(params))

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if "bins" not in revealed:
            return super().finish(params, revealed, rows)
        if rows == 0:
            raise InvalidTaskParams(f"{self.name} over zero rows")
        vals = self.dp_quantiles(params, [int(v) for v in revealed["bins"]], rows)
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))


class Extreme(OrderStat):
    """min or max: a secure tournament (rows - 1 comparisons in log2(rows) rounds) opens only
    the extreme, clamped to the declared range; cheaper than a binary search over the range."""

    needs = ("extreme",)
    reveals = "per column: the minimum (or maximum) only"
    cost = "rows - 1 secure comparisons per column, log2(rows) rounds"

    def per_column(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        # clamp(max(x)) = max(clamp(x)): an out-of-range value moves it no further than a
        # legal one could (the kernel opens it unclamped; a private result is clamped here too)
        return [
            c.decode(min(max(int(v), c.enc_lo), c.enc_hi))
            for c, v in zip(params.columns, r["extreme"], strict=True)
        ]


class Quantiles(OrderStat):
    args = (Arg("q", "decimals", "quantiles in [0, 1], e.g. 0.25,0.5,0.75", required=True),
            DP_BINS_ARG)  # fmt: skip

    def validate(self, params: TaskView) -> None:
        qs = params.args.get("q") or []
        if not qs or any(not 0 <= parse_decimal(q) <= 1 for q in qs):
            raise InvalidTaskParams(f"{self.name}: q needs 1+ values in [0, 1]")
        super().validate(params)

    def qlist(self, params: TaskView) -> list[str]:
        return list(params.args["q"])

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(params.args.get("q") or ()), len(params.columns))

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if "bins" in revealed:  # DP: read off the noisy histogram (OrderStat)
            return super().finish(params, revealed, rows)
        at = _order(params, revealed)
        cols = range(len(params.columns))
        vals = [quantile(rows, q, {k: v[j] for k, v in at.items()}) for q in self.qlist(params)
                for j in cols]  # fmt: skip
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return (tuple(self.qlist(params)), self.names(params))


class Histogram(Stat):
    input_types = ("int", "fixed", "cat")
    max_columns = 1
    args = (Arg("bins", "decimals", "numeric columns: bin edges, e.g. 0,10,20,50"),)
    reveals = "the count of each bin (numeric columns) or category (categorical columns)"
    cost = "numeric: rows x (bins + 1) secure comparisons; categorical: local additions"

    def _cat(self, params: TaskView) -> bool:
        return params.columns[0].type == "cat"

    def edges(self, params: TaskView) -> list[Fraction]:
        return [parse_decimal(e) for e in params.args.get("bins") or ()]

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        if not self._cat(params):
            e = self.edges(params)
            if len(e) < 2 or any(a >= b for a, b in zip(e, e[1:], strict=False)):
                raise InvalidTaskParams(f"{self.name}: bins needs 2+ increasing edges")
        elif params.args.get("bins"):
            raise InvalidTaskParams(f"{self.name}: a categorical column has no bins")

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        if params.columns and self._cat(params):
            return (len(params.columns[0].domain),)
        return (max(len(params.args.get("bins") or ()) - 1, 0),)

    def width(self, params: TaskView) -> int:
        return len(params.columns[0].domain) if self._cat(params) else 1

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        if not self._cat(params):
            return [int(v) for v in table.data[0]]
        k = len(params.columns[0].domain)
        return [int(i == v) for v in table.data[0] for i in range(k)]  # one-hot rows

    def dp_releases(self, params: TaskView) -> list[Release]:
        # one changed row moves one count down and another up (or one, out of every bin)
        if self._cat(params):
            return [Release("sum", self.out_shape(params)[0], 2)]
        return [Release("bins", self.out_shape(params)[0], 2)]

    def dp_kernel_args(self, params: TaskView) -> dict[str, Any]:
        plan = self.dp_plan(params)
        return {} if plan is None else {"dp": plan.kernel_args()}

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        if self._cat(params):
            return {"width": self.width(params), "needs": ["sum"]} | self.dp_kernel_args(params)
        scale = 10 ** params.columns[0].scale
        e = [x * scale for x in self.edges(params)]
        below = [math.ceil(x) for x in e[:-1]] + [math.floor(e[-1]) + 1]  # x < t, t integer
        return {"width": 1, "needs": ["below"], "below": below,
                "cmp_bits": self.cmp_bits(params)} | self.dp_kernel_args(params)  # fmt: skip

    def cmp_bits(self, params: TaskView) -> int:
        if not params.columns or self._cat(params):
            return 0
        scale = 10 ** params.columns[0].scale
        edges = [math.ceil(abs(x) * scale) + 1 for x in self.edges(params)]
        span = params.columns[0].bound + max(edges, default=0)
        return max(span.bit_length(), params.max_rows.bit_length()) + 3

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if self._cat(params):
            vals = [Fraction(int(v)) for v in revealed["sum"]]
        elif "bins" in revealed:  # DP: the kernel opened only the noisy bin counts
            vals = [Fraction(int(v)) for v in revealed["bins"]]
        else:
            b = [int(v) for v in revealed["below"]]
            vals = [Fraction(b[i + 1] - b[i]) for i in range(len(b) - 1)]
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        if self._cat(params):
            return (params.columns[0].domain,)
        e = params.args["bins"]
        last = len(e) - 2
        return (tuple(f"[{e[i]},{e[i + 1]}{']' if i == last else ')'}" for i in range(last + 1)),)


class Covariance(Stat):
    needs = ("sum", "gram")
    squares = True
    min_columns = 2
    max_columns = 4
    args: tuple[Arg, ...] = (
        Arg("ddof", "int", "delta degrees of freedom (numpy.cov: 1)", default=1),
    )
    reveals = "the column sums and the matrix of sums of products (X^T X)"
    cost = "one secure matrix product (columns^2 products per row), one opening"

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(params.columns), len(params.columns))

    def cov(self, params: TaskView, r: Mapping[str, Any], n: int, ddof: int) -> list[Fraction]:
        cols = params.columns
        k = len(cols)
        m = _means(params, r, n)
        raw = [int(v) for v in r["gram"]]
        # symmetric: exact sums are already; noisy ones (DP) are averaged (post-processing)
        g = [Fraction(raw[i * k + j] + raw[j * k + i], 2) for i in range(k) for j in range(k)]
        if n - ddof <= 0:
            raise InvalidTaskParams(f"{self.name}: {n} rows with ddof={ddof}")
        return [
            (Fraction(g[i * k + j], 10 ** (cols[i].scale + cols[j].scale)) - n * m[i] * m[j])
            / (n - ddof)
            for i in range(k)
            for j in range(k)
        ]

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        vals = self.cov(params, revealed, rows, int(params.args.get("ddof", 1)))
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return (self.names(params), self.names(params))


class Correlation(Covariance):
    args = ()

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        k = len(params.columns)
        c = self.cov(params, revealed, rows, 0)
        d = [c[i * k + i] for i in range(k)]
        # noisy sums (DP) may give a variance <= 0 or |r| > 1: post-processing keeps it in range
        vals = [
            Fraction(1) if i == j and d[i] > 0 else
            (max(Fraction(-1), min(Fraction(1), c[i * k + j] / sqrt(d[i] * d[j])))
             if d[i] > 0 and d[j] > 0 else Fraction(0))
            for i in range(k) for j in range(k)
        ]  # fmt: skip
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))


for spec in (
    Count(name="mpc.count", description="number of rows of each column"),
    Sum(name="mpc.sum", description="secure sum of each column over every owner's rows"),
    Mean(name="mpc.mean", description="secure mean of each column"),
    Variance(name="mpc.variance", description="secure mean and population variance per column"),
    Std(name="mpc.std", description="secure population standard deviation per column"),
    Extreme(name="mpc.min", description="secure minimum per column", qs=("0",)),
    Extreme(name="mpc.max", description="secure maximum per column", qs=("1",)),
    OrderStat(name="mpc.median", description="secure median per column", qs=("0.5",)),
    Quantiles(name="mpc.quantiles", description="secure quantiles per column (linear)"),
    Histogram(name="mpc.histogram", description="bin or category counts of one column"),
    Covariance(name="mpc.covariance", description="covariance matrix of 2-4 columns (numpy.cov)"),
    Correlation(name="mpc.correlation", description="correlation matrix of 2-4 columns"),
):
    register(spec)
