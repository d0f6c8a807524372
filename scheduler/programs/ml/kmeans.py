"""``ml.kmeans``: Lloyd's k-means over rows split across owners (kernel:
``node.engines.mpc.kernels.kmeans``).

Algorithm (secure aggregation of per-cluster sums, centroids public between iterations):

1. once: every coordinate is clamped into its column's declared range inside the MPC (two
   checked comparisons per value), so an owner's out-of-range point moves a centroid no further
   than a legal point could (with checks, a value beyond the comparison range aborts);
2. per iteration, with the centroids ``c_1..c_k`` public: each point's score
   ``2 x.c_j - |c_j|^2`` is linear in the secret x (no product), the nearest centroid is a
   secure argmax (a tournament of k - 1 checked comparisons per point that carries a secret
   one-hot vector), the per-cluster sums are one secure matrix product ``onehot^T X``;
3. the committee opens the per-cluster sums and sizes (k x (d + 1) values), divides publicly
   and rounds the new centroids to the fixed-point grid; it stops after ``iterations`` or when
   no centroid moved more than ``tol`` in any column.

With ``sample`` = s > 0 (mini-batch Lloyd): every iteration but the last runs steps 2-3 over a
public random sample of s rows (drawn from ``seed`` and the row count, the same at every
party); once the sample's centroids stop moving (``tol``) or one iteration is left, one last
iteration runs over every row, so the output sizes and centroids are those of all the data.
Cost: (k - 1)(s (iterations - 1) + n) comparisons instead of (k - 1) n iterations.

Revealed to the committee at each iteration: the centroids and the cluster sizes of that
iteration (what the final output is made of; with ``sample``, the sample's sums and sizes
until the last iteration, which aggregate s rows instead of n); never a point, its distances
or its assignment.  Which rows are in the sample is public (a function of the seed and n).
The final centroids and sizes are the public result.  An empty cluster keeps its centroid
(scikit-learn would move it to a far point instead).

With ``--epsilon``/``--rho`` (differential privacy: DPLloyd, Blum, Dwork, McSherry, Nissim,
"Practical privacy: the SuLQ framework", PODS 2005; Su, Cao, Li, Bertino, Jin, "Differentially
private k-means clustering", CODASPY 2016): every iteration's per-cluster sums and sizes get
discrete Laplace noise sampled inside the MPC before they are opened, so the committee and
everyone after it see only noisy sums and sizes; the centroids (noisy sum / noisy size,
clamped to the declared box; a cluster whose noisy size is below 1 keeps its centroid) are
post-processing. The budget is split equally over 2 x ``iterations`` releases (sums and sizes
of each iteration: sequential composition, or zCDP through OpenDP) and charged for all
``iterations`` even when ``tol`` stops it earlier. One changed row leaves one cluster and joins
another: L1 2 for the sizes, 2 x sum_j max(|lo_j|, |hi_j|) for the sums (points clamped into
the declared box first, step 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.dp import Release
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import (
    NUMERIC,
    bounds_at_common,
    cluster_labels,
    common_scale,
    multipliers,
    public_uniform,
)
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import parse_decimal

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView

KERNEL = "dnode.node.engines.mpc.kernels.kmeans"
EXTRA_DIGITS = 1  # centroids carry one decimal more than the data
MAX_FIELD_BITS = 128
MAX_ITERATIONS = 100


class KMeans(ProgramSpec):
    family = "ml"
    capability = "mpc"
    kernel = KERNEL
    input_types = NUMERIC
    max_columns = 15
    args = (
        Arg("k", "int", "number of clusters", required=True),
        Arg("iterations", "int", "Lloyd iterations at most", default=10),
        Arg("tol", "decimal", "stop once no centroid moves more than this (column units)",
            default="0"),
        Arg("init", "decimals", "initial centroids, k rows of the columns, row-major"),
        Arg("seed", "int", "public seed of initial centroids drawn from the declared ranges",
            default=0),
        Arg("sample", "int", "rows of a public random sample that every iteration but the "
            "last runs on (0: all rows; the last runs on all rows)", default=0),
    )  # fmt: skip
    reveals = (
        "per iteration: the centroids and the cluster sizes (to the committee; with --sample, "
        "those of the public sample's rows until the last iteration; with --epsilon/--rho only "
        "noisy sums and sizes); output: the final ones"
    )
    revealed_to = "the committee at every iteration, then everyone (on-chain)"
    dp = True  # DPLloyd: noisy per-cluster sums and sizes at every iteration
    cost = (
        "per iteration: (k - 1) checked comparisons per point (of the sample with --sample, "
        "of every row in the last), one k x d secure matrix product"
    )

    # ---- validation --------------------------------------------------------------------

    def k(self, params: TaskView) -> int:
        return int(params.args["k"])

    def dims(self, params: TaskView) -> int:
        return len(params.columns)

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        k, d = self.k(params), self.dims(params)
        if k < 1:
            raise InvalidTaskParams(f"{self.name}: k must be at least 1")
        if k > params.max_rows:
            raise InvalidTaskParams(
                f"{self.name}: k={k} clusters but the task admits at most {params.max_rows} rows"
            )
        if k * (d + 1) > MAX_RESULT_VALUES:
            raise InvalidTaskParams(
                f"{self.name}: {k} centroids of {d} column(s) plus sizes are {k * (d + 1)} "
                f"values; at most {MAX_RESULT_VALUES} fit the on-chain result"
            )
        it = int(params.args.get("iterations", 10))
        if not 1 <= it <= MAX_ITERATIONS:
            raise InvalidTaskParams(f"{self.name}: iterations must be 1..{MAX_ITERATIONS}")
        sample = int(params.args.get("sample", 0))
        if sample < 0 or 0 < sample < k:
            raise InvalidTaskParams(
                f"{self.name}: sample must be 0 (all rows) or at least k={k}, got {sample}"
            )
        if parse_decimal(str(params.args.get("tol", "0"))) < 0:
            raise InvalidTaskParams(f"{self.name}: tol must be >= 0")
        self.initial(params)  # a bad --init is refused before posting
        self.field_bits(params)

    def initial(self, params: TaskView) -> list[list[Fraction]]:
        """The k initial centroids (column units): ``init`` as given, else public draws."""
        k, cols = self.k(params), params.columns
        cs = common_scale(params) + EXTRA_DIGITS
        init = params.args.get("init")
        if init:
            vals = [parse_decimal(v) for v in init]
            if len(vals) != k * len(cols):
                raise InvalidTaskParams(
                    f"{self.name}: init needs k x columns = {k * len(cols)} values, got {len(vals)}"
                )
            rows = [vals[i * len(cols) : (i + 1) * len(cols)] for i in range(k)]
            for r in rows:
                for c, v in zip(cols, r, strict=True):
                    if not c.lo <= v <= c.hi:
                        raise InvalidTaskParams(
                            f"{self.name}: initial centroid value {v} is outside column "
                            f"{c.name!r}'s declared range [{c.lo}, {c.hi}]"
                        )
                    if (v * 10**cs).denominator != 1:
                        raise InvalidTaskParams(
                            f"{self.name}: initial centroid value {v} has more than {cs} decimals"
                        )
            return rows
        seed = int(params.args.get("seed", 0))
        return [[public_uniform(seed, f"{i}:{j}", c.lo, c.hi, c.scale)
                 for j, c in enumerate(cols)] for i in range(k)]  # fmt: skip

    # ---- sizes -------------------------------------------------------------------------

    def centroid_scale(self, params: TaskView) -> int:
        return common_scale(params) + EXTRA_DIGITS

    def _magnitude(self, params: TaskView) -> int:
        """Largest |coordinate| at the centroid scale (points and centroids alike)."""
        return max(max(abs(a), abs(b)) for a, b in bounds_at_common(params)) * 10**EXTRA_DIGITS

    def dist_bits(self, params: TaskView) -> int:
        """Bits of a signed difference of two scores 2 x.c - |c|^2 (each |.| <= 3 d B^2)."""
        b = self._magnitude(params)
        return (6 * self.dims(params) * b * b).bit_length() + 2

    def clamp_bits(self, params: TaskView) -> int:
        span = max(b - a for a, b in bounds_at_common(params))
        b = max(max(abs(a), abs(b)) for a, b in bounds_at_common(params))
        return (2 * (span + b)).bit_length() + 2

    def field_bits(self, params: TaskView) -> int:
        n = params.max_rows
        bnd = max(max(abs(a), abs(b)) for a, b in bounds_at_common(params))
        need = max(n * bnd, n * max(1, *(c.bound for c in params.columns)))
        bits = max(32, need.bit_length() + 2, self.dist_bits(params) + 2,
                   self.clamp_bits(params) + 2)  # fmt: skip
        plan = self.dp_plan(params)
        if plan is not None:  # a noisy sum or size must fit: |Z| < 2**noise_bits
            bits = max(bits, max(need.bit_length(), plan.noise_bits) + 3)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the declared ranges with max_rows={n} need {bits}-bit secure "
                f"integers (at most {MAX_FIELD_BITS}); narrow the ranges or fewer decimals"
            )
        return bits

    # ---- differential privacy ----------------------------------------------------------

    def dp_releases(self, params: TaskView) -> list[Release]:
        """Per iteration the k x d cluster sums and the k sizes (at the common scale the
        kernel sums in). One changed row leaves cluster a and joins cluster b: the sizes move
        by 2 in L1; the sums by sum_j |x_j| + |x'_j| <= 2 sum_j max(|lo_j|, |hi_j|) (a != b),
        or by sum_j (hi_j - lo_j) (a = b), points being clamped to the declared box in the
        MPC first."""
        k, d = self.k(params), self.dims(params)
        lh = bounds_at_common(params)
        sens = max(2 * sum(max(abs(a), abs(b)) for a, b in lh), sum(b - a for a, b in lh))
        out = []
        for it in range(int(params.args.get("iterations", 10))):
            out += [Release(f"sums-{it}", k * d, max(1, sens)), Release(f"sizes-{it}", k, 2)]
        return out

    # ---- kernel ------------------------------------------------------------------------

    def private_refusal(self, params: TaskView) -> str | None:
        return "its iterations open every intermediate centroid to the committee"

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        cs = self.centroid_scale(params)
        init = [int(v * 10**cs) for row in self.initial(params) for v in row]
        lh = bounds_at_common(params)
        return {
            "k": self.k(params),
            "iterations": int(params.args.get("iterations", 10)),
            "tol": int(parse_decimal(str(params.args.get("tol", "0"))) * 10**cs),
            "init": init,
            "mult": multipliers(params),
            "extra": 10**EXTRA_DIGITS,
            "lo": [a for a, _ in lh],
            "hi": [b for _, b in lh],
            "dist_bits": self.dist_bits(params),
            "clamp_bits": self.clamp_bits(params),
            "sample": int(params.args.get("sample", 0)),
            "sample_seed": int(params.args.get("seed", 0)),
        } | ({} if (plan := self.dp_plan(params)) is None else {"dp": plan.kernel_args()})

    # ---- output ------------------------------------------------------------------------

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (self.k(params), self.dims(params) + 1)

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return cluster_labels(self.k(params), params)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        k, d = self.k(params), self.dims(params)
        if revealed.get("error"):
            raise InvalidTaskParams(str(revealed["error"]))
        if rows < k:
            raise InvalidTaskParams(f"{self.name}: k={k} clusters but only {rows} row(s) of data")
        scale = 10 ** self.centroid_scale(params)
        cents = [int(v) for v in revealed["centroids"]]
        sizes = [int(v) for v in revealed["sizes"]]
        vals: list[Fraction] = []
        for i in range(k):
            vals += [Fraction(cents[i * d + j], scale) for j in range(d)]
            vals.append(Fraction(sizes[i]))
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))


register(
    KMeans(name="ml.kmeans", description="k-means clustering (Lloyd) of rows split across owners")
)
