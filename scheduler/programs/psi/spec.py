"""Specs of the PSI family (kernel: ``node.engines.mpc.kernels.psi``): PSI cardinality, the
intersection to a participating requester, labelled PSI, and JOIN ... ON id with aggregates.

Protocol (docs/protocol.md "PSI and joins"; token math in :mod:`.tokens`): every owner blinds
the hashes of its ids with one secret scalar r (one-shot, no round trip) and secret-shares, over
GF(n) (``field_prime``: secp256k1's group order, so shares are exponents), one header row holding
rho = r^-1 and then one row per id: the blinded point as two 128-bit halves followed by the
row's numeric columns. The committee opens the blinded points (pseudorandom to a seat), draws
a shared key [k], computes [k * rho] per owner (one checked product) and turns every point into
the token k * H(id) in the exponent (each seat one scalar multiplication per point; a parity
check over all seats' partials catches a wrong one). Seats see tokens, hence which rows of
which owners share an id (the match pattern) and the set sizes, never an id, a hash of one,
or a numeric value.

Row 0 of every owner is its header; the owners' table columns (the id excluded) fill slots
2.. of every row; a slot an owner does not hold is 0 and is never read from that owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.dp import Release
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.psi import tokens
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.stats.spec import _span_prod, clip_bits, sqrt

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.schema import Column
    from dnode.scheduler.programs.tables import Table

KERNEL = "dnode.node.engines.mpc.kernels.psi"
FIELD_BITS = 200  # secure integers over GF(n) (256 bits): MPyC needs n > 2**(bits + 31)
DOMAIN_TAG = b"dnode.psi.task.v1"

#: aggregate name -> number of column arguments (DuckDB's definitions; ``count`` is COUNT(*))
AGGREGATES = {
    "count": 0, "sum": 1, "avg": 1, "var_samp": 1, "var_pop": 1, "variance": 1,
    "stddev": 1, "stddev_samp": 1, "stddev_pop": 1,
    "covar_pop": 2, "covar_samp": 2, "corr": 2,
}  # fmt: skip


def task_domain(params: TaskView) -> bytes:
    """The hash domain of a task: its params digest (the same for every owner of the task)."""
    digest = getattr(params, "digest", b"")
    return DOMAIN_TAG + bytes(digest)


class PsiSpec(ProgramSpec):
    """The common part: one ``id`` column, owner-side blinding, the GF(n) field."""

    family = "psi"
    capability = "mpc"
    kernel = KERNEL
    input_types: tuple[str, ...] = ("id", "int", "fixed", "cat")
    mode = ""
    min_owners = 2
    max_owners = 2
    needs_private = False
    supports_rerun = True

    # ---- schema ------------------------------------------------------------------------

    def id_column(self, params: TaskView) -> Column:
        ids = [c for c in params.columns if c.type == "id"]
        if len(ids) != 1:
            raise InvalidTaskParams(f"{self.name} needs exactly one id column (got {len(ids)})")
        return ids[0]

    def value_columns(self, params: TaskView) -> tuple[Column, ...]:
        return tuple(c for c in params.columns if c.type != "id")

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        self.id_column(params)
        n = len(params.owners)
        if not self.min_owners <= n <= self.max_owners:
            want = (f"{self.min_owners}" if self.min_owners == self.max_owners
                    else f"{self.min_owners}..{self.max_owners}")  # fmt: skip
            raise InvalidTaskParams(f"{self.name} takes {want} data owners, the task names {n}")
        if self.needs_private and not getattr(params, "result_key", ""):
            raise InvalidTaskParams(
                f"{self.name} delivers only to the requester: post it with a private result "
                "(--private-result), the requester being data owner 0"
            )

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        return None  # inputs are points and exponents: no range witness applies

    def field_prime(self, params: TaskView) -> int | None:
        return tokens.ORDER

    def field_bits(self, params: TaskView) -> int:
        return FIELD_BITS

    def width(self, params: TaskView) -> int:
        return 2 + len(self.value_columns(params))

    # ---- owner side --------------------------------------------------------------------

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        """[rho, 0, ...] then per id [point hi, point lo, its columns' values (0: not held)]."""
        ident = self.id_column(params)
        slots = {c.name: i for i, c in enumerate(self.value_columns(params))}
        names = [c.name for c in table.columns]
        ids = table.data[names.index(ident.name)]
        held = [(slots[n], table.data[j]) for j, n in enumerate(names) if n in slots]
        r = tokens.new_blinding()
        points = tokens.blind(task_domain(params), [str(i) for i in ids], r)
        w = self.width(params)
        out = [tokens.unblinding(r)] + [0] * (w - 1)
        for row, p in enumerate(points):
            vals = [0] * (w - 2)
            for slot, col in held:
                vals[slot] = int(col[row])
            out += [*tokens.split(p), *vals]
        return out

    # ---- engine side -------------------------------------------------------------------

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        return {"mode": self.mode}

    def private_refusal(self, params: TaskView) -> str | None:
        return super().private_refusal(params)


class Cardinality(PsiSpec):
    """With ``--epsilon``/``--rho``: the intersection size plus discrete Laplace noise sampled
    inside the MPC (sensitivity 1: one id changed in one owner's set moves the intersection
    size by at most 1). The committee counts the tokens in the clear (the match pattern is
    its by design), so the guarantee protects the output from its readers, not the seats."""

    mode = "cardinality"
    max_owners = 16
    max_columns = 1
    input_types = ("id",)
    dp = True
    dp_neighbours = "one id of one owner's set changed (set sizes are public)"
    dp_scope = ("the committee counts the intersection in the clear (it sees the match "
                "pattern of tokens): DP protects the result from everyone else")  # fmt: skip
    reveals = (
        "the intersection size; to the committee also the match pattern of the owners' "
        "tokens (which rows of which owners share an id) and every owner's set size"
    )
    cost = "per id: one scalar multiplication (owner), one per seat, a few point additions"

    def dp_releases(self, params: TaskView) -> list[Release]:
        # a changed id leaves the intersection, or joins it, or neither: |change| <= 1
        return [Release("count", 1, 1)]

    def field_bits(self, params: TaskView) -> int:
        plan = self.dp_plan(params)  # the noisy count must fit (it does: 200 bits)
        if plan is not None and plan.noise_bits + 20 > FIELD_BITS:
            raise InvalidTaskParams(f"{self.name}: the noise is too wide for the field")
        return FIELD_BITS

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        plan = self.dp_plan(params)
        return {"mode": self.mode} | ({} if plan is None else {"dp": plan.kernel_args()})

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        (n,) = revealed["count"]
        # a noisy count may be negative: clamped at 0 (post-processing)
        n = max(0, int(n)) if self.dp_plan(params) is not None else int(n)
        return Output((Fraction(n),), n)


PER_ID = ("its output is, by design, one answer per id of the requester's own set (a "
          "per-record output): DP would have to randomise every answer; psi.cardinality "
          "takes --epsilon")  # fmt: skip


class Intersection(PsiSpec):
    mode = "intersection"
    dp_refusal = PER_ID
    max_columns = 1
    input_types = ("id",)
    needs_private = True
    revealed_to = "the requester only (sealed shares); the committee sees the match pattern"
    reveals = ("to the requester (data owner 0): for each of its rows, in its file's order, 1 if "
               "its id is in the other owner's set, else 0; to the committee: the match pattern "
               "of tokens and both set sizes, never an id")  # fmt: skip
    cost = Cardinality.cost

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        bits = [Fraction(int(b)) for b in revealed["match"]]
        return Output(tuple(bits), int(sum(bits)))


class Labelled(PsiSpec):
    """The provider (owner 1) holds the id and 1+ label columns; the requester (owner 0) only
    the id. Labels stay secret-shared: the committee picks the matched provider row's shares
    (a public index: the match pattern) and seals them to the requester. A provider id on
    several rows labels with its first row."""

    mode = "label"
    dp_refusal = PER_ID
    max_columns = 1 + 4
    needs_private = True
    revealed_to = Intersection.revealed_to
    reveals = ("to the requester: per its row, 1 and the provider's label(s) if its id is in the "
               "provider's set, else 0 and 0; to the committee: the match pattern and set sizes, "
               "no label")  # fmt: skip
    cost = Cardinality.cost

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        if not self.value_columns(params):
            raise InvalidTaskParams(f"{self.name} needs 1+ label columns besides the id")

    def owner_columns(self, params: TaskView, owner: int | None) -> tuple[Column, ...]:
        if owner == 0:
            return (self.id_column(params),)
        return tuple(params.columns)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        cols = self.value_columns(params)
        bits = [int(b) for b in revealed["match"]]
        labels = [int(v) for v in revealed["label"]]
        k = len(cols)
        vals: list[Fraction] = []
        for j, b in enumerate(bits):
            vals.append(Fraction(b))
            vals += [c.decode(labels[j * k + i]) for i, c in enumerate(cols)]
        return Output(tuple(vals), sum(bits))


class Join(PsiSpec):
    """``query.join``: JOIN of two owners' tables ON their id, then aggregates over the
    joined rows (columns from both sides). Args: ``plan`` (JSON)::

        {"tables": [["x"], ["y", "z"]],          # value columns owner 0 / owner 1 holds
         "aggregates": [["count"], ["avg", "x"], ["corr", "x", "y"], ...]}

    Aggregates follow DuckDB: var_samp (= variance), var_pop, stddev (= stddev_samp),
    stddev_pop, covar_pop, covar_samp, corr (population moments). Opened: the join size (the
    committee knows it from the match pattern), the sums of the columns the aggregates name,
    and only the entries of X^T X they need.

    With ``--epsilon``/``--rho`` every opened value gets discrete Laplace noise sampled inside
    the MPC, after the summed columns of the joined rows are clipped to their declared ranges
    inside the MPC. Contribution bound: each owner's rows are deduplicated by token (its first
    row per id is kept; the committee sees the tokens, so this reveals nothing new), so one
    changed row of one owner removes at most one joined row and adds at most one."""

    mode = "join"
    dp = True
    dp_neighbours = ("one row of one owner changed (id and values; each id counts once per "
                     "owner: its first row); the table sizes are public")  # fmt: skip
    dp_scope = ("the committee knows the exact join size (it sees the match pattern of "
                "tokens); the sums are protected from everyone, the size from all but the "
                "committee")  # fmt: skip
    args = (Arg("plan", "json", "the join plan: tables (columns per owner) and aggregates",
                required=True),)  # fmt: skip
    reveals = ("the join size, per aggregated column its sum, the sums of squares / products the "
               "aggregates need; to the committee also the match pattern of tokens")  # fmt: skip
    cost = ("per id: one scalar multiplication per seat; then one secure matrix product over "
            "the joined rows")  # fmt: skip

    def plan(self, params: TaskView) -> tuple[list[list[str]], list[list[str]]]:
        p = params.args.get("plan")
        if not isinstance(p, dict):
            raise InvalidTaskParams(f"{self.name}: plan must be a JSON object")
        tables, aggs = p.get("tables"), p.get("aggregates")
        if not (isinstance(tables, list) and len(tables) == 2
                and all(isinstance(t, list) and all(isinstance(c, str) for c in t)
                        for t in tables)):  # fmt: skip
            raise InvalidTaskParams(f"{self.name}: plan.tables must be two lists of column names")
        if not (isinstance(aggs, list) and aggs
                and all(isinstance(a, list) and a and all(isinstance(x, str) for x in a)
                        for a in aggs)):  # fmt: skip
            raise InvalidTaskParams(f"{self.name}: plan.aggregates must be a non-empty list "
                                    "of [name, column...]")  # fmt: skip
        return tables, aggs

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        tables, aggs = self.plan(params)
        names = [c.name for c in self.value_columns(params)]
        held = [c for t in tables for c in t]
        if sorted(held) != sorted(names):
            raise InvalidTaskParams(
                f"{self.name}: plan.tables must split the non-id columns {names} between the two "
                f"owners (got {tables})"
            )
        for c in self.value_columns(params):
            if c.type == "cat":
                raise InvalidTaskParams(f"{self.name}: cannot aggregate categorical {c.name!r}")
        if len(aggs) > MAX_RESULT_VALUES:
            raise InvalidTaskParams(f"{self.name}: at most {MAX_RESULT_VALUES} aggregates")
        for a in aggs:
            fn, cols = a[0].lower(), a[1:]
            if fn not in AGGREGATES:
                raise InvalidTaskParams(f"{self.name}: unsupported aggregate {a[0]!r}")
            # COUNT(col) = COUNT(*): a column holds no NULL (every cell is checked on encoding)
            if len(cols) != AGGREGATES[fn] and not (fn == "count" and len(cols) == 1):
                raise InvalidTaskParams(f"{self.name}: {fn} takes {AGGREGATES[fn]} column(s)")
            for name in cols:
                if name not in names:
                    raise InvalidTaskParams(f"{self.name}: unknown column {name!r} in {fn}")

    def owner_columns(self, params: TaskView, owner: int | None) -> tuple[Column, ...]:
        if owner is None:
            return tuple(params.columns)
        tables, _ = self.plan(params)
        mine = set(tables[owner])
        return tuple(c for c in params.columns if c.type == "id" or c.name in mine)

    def _needs(self, params: TaskView) -> tuple[list[int], list[tuple[int, int]]]:
        """(slots whose sum is opened, (i, j) slot pairs whose sum of products is opened)."""
        _, aggs = self.plan(params)
        slot = {c.name: i for i, c in enumerate(self.value_columns(params))}
        sums: set[int] = set()
        pairs: set[tuple[int, int]] = set()
        for a in aggs:
            fn, cols = a[0].lower(), [slot[c] for c in a[1:]]
            if fn == "count":
                continue
            sums |= set(cols)
            if fn.startswith(("var", "stddev")):
                pairs.add((cols[0], cols[0]))
            elif fn.startswith("covar"):
                pairs.add((min(cols), max(cols)))
            elif fn == "corr":
                x, y = cols
                pairs |= {(x, x), (y, y), (min(x, y), max(x, y))}
        return sorted(sums), sorted(pairs)

    def dp_releases(self, params: TaskView) -> list[Release]:
        """One changed row of one owner removes at most one joined row and adds at most one
        (ids deduplicated per owner in the MPC): the join size moves by at most 1; a column
        sum by at most max(hi - lo, |lo|, |hi|) (a value replaced, or one leaving or joining
        the join: either side's columns); a sum of products x_i x_j by at most max(span,
        largest |x_i x_j|) over the declared box. Encoded integer units, values clipped to
        the declared ranges inside the MPC."""
        cols = self.value_columns(params)
        sums, pairs = self._needs(params)
        out = [Release("count", 1, 1)]
        if sums:
            sens = sum(max(cols[i].enc_hi - cols[i].enc_lo, cols[i].bound) for i in sums)
            out.append(Release("sum", len(sums), sens))
        if pairs:
            out.append(Release("gram", len(pairs), sum(_gram_sens(cols[i], cols[j])
                                                       for i, j in pairs)))  # fmt: skip
        return out

    def field_bits(self, params: TaskView) -> int:
        plan = self.dp_plan(params)
        if plan is not None:
            cols = self.value_columns(params)
            top = params.max_rows * max((c.bound for c in cols), default=1) ** 2
            if max(top.bit_length(), plan.noise_bits) + 35 > FIELD_BITS:
                raise InvalidTaskParams(
                    f"{self.name}: the declared ranges with max_rows={params.max_rows} and "
                    "the noise do not fit the field; narrow the ranges"
                )
        return FIELD_BITS

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        tables, _ = self.plan(params)
        cols = self.value_columns(params)
        slot = {c.name: i for i, c in enumerate(cols)}
        sums, pairs = self._needs(params)
        out: dict[str, Any] = {
            "mode": self.mode,
            "holder": [[slot[c] for c in t] for t in tables],  # slots each owner holds
            "sums": sums,
            "pairs": [list(p) for p in pairs],
        }
        plan = self.dp_plan(params)
        if plan is not None:
            out["dp"] = plan.kernel_args()
            out["clip"] = [[i, cols[i].enc_lo, cols[i].enc_hi] for i in sums]
            out["clip_bits"] = clip_bits([cols[i] for i in sums]) if sums else 0
        return out

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(self.plan(params)[1]),)

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        _, aggs = self.plan(params)
        return (tuple(f"{a[0].lower()}({','.join(a[1:]) or '*'})" for a in aggs),)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        _, aggs = self.plan(params)
        cols = self.value_columns(params)
        slot = {c.name: i for i, c in enumerate(cols)}
        (n,) = [int(v) for v in revealed["count"]]
        noisy = self.dp_plan(params) is not None
        if noisy:  # post-processing of noisy values: a size of at least 1
            n = max(1, n)
        sums_at, pairs = self._needs(params)
        s = {i: cols[i].decode(int(v)) for i, v in zip(sums_at, revealed["sum"], strict=True)}
        g = {
            (i, j): Fraction(int(v), 10 ** (cols[i].scale + cols[j].scale))
            for (i, j), v in zip(pairs, revealed["gram"], strict=True)
        }

        def need(k: int, what: str) -> None:
            if n < k and not noisy:
                raise InvalidTaskParams(f"{self.name}: {what} over a join of {n} row(s)")

        def cov(i: int, j: int, ddof: int) -> Fraction:
            need(ddof + 1, "a variance or covariance")
            c = (g[(min(i, j), max(i, j))] - s[i] * s[j] / n) / max(1, n - ddof)
            # noisy moments may give a negative variance: clamped at 0 (post-processing)
            return max(Fraction(0), c) if noisy and i == j else c

        out: list[Fraction] = []
        for a in aggs:
            fn, c = a[0].lower(), [slot[x] for x in a[1:]]
            if fn == "count":
                out.append(Fraction(n))
            elif fn == "sum":
                out.append(s[c[0]])
            elif fn == "avg":
                need(1, "avg")
                out.append(s[c[0]] / n)
            elif fn in ("var_samp", "variance", "var_pop"):
                out.append(cov(c[0], c[0], 0 if fn == "var_pop" else 1))
            elif fn.startswith("stddev"):
                out.append(sqrt(cov(c[0], c[0], 0 if fn == "stddev_pop" else 1)))
            elif fn.startswith("covar"):
                out.append(cov(c[0], c[1], 0 if fn == "covar_pop" else 1))
            else:  # corr
                vx, vy = cov(c[0], c[0], 0), cov(c[1], c[1], 0)
                r = cov(c[0], c[1], 0) / sqrt(vx * vy) if vx and vy else Fraction(0)
                out.append(min(Fraction(1), max(Fraction(-1), r)) if noisy else r)
        return Output(tuple(out), n, self.out_shape(params), self.labels(params))


def _gram_sens(a: Column, b: Column) -> int:
    """Largest change of one joined row's x_a x_b: a row replaced (the span over the declared
    box) or one leaving or joining the join (its largest |x_a x_b|)."""
    corners = [x * y for x in (a.enc_lo, a.enc_hi) for y in (b.enc_lo, b.enc_hi)]
    return max(_span_prod(a, b), max(abs(v) for v in corners))


for _spec in (
    Cardinality(name="psi.cardinality", description="size of the intersection of 2-16 owners' "
                "id sets (no seat sees an id)"),
    Intersection(name="psi.intersection", description="which of the requester's ids the other "
                 "owner holds, delivered only to the requester"),
    Labelled(name="psi.label", description="labelled PSI: the provider's labels for the "
             "requester's ids it holds, delivered only to the requester"),
    Join(name="query.join", description="JOIN two owners' tables ON id, then aggregates over "
         "columns from both (no seat sees an id or a value)"),
):  # fmt: skip
    register(_spec)
