"""``ml.kmeans_step``: ONE federated Lloyd iteration from public centroids (kernel:
``node.engines.mpc.kernels.federated``; a chain of these is ``dnode ml kmeans --federated``,
``Client.kmeans``).

Why: ``ml.kmeans`` assigns every point inside the MPC ((k - 1) checked comparisons per point
and iteration, about 9,300 s for 100k points on 2 cores, docs/benchmarks.md); but the centroids
of an iteration are public to the committee anyway.  In the federated mode (horizontally
partitioned k-means with secure sums: Vaidya and Clifton, KDD 2003; Jagannathan and Wright,
KDD 2005) the centroids are in the task's params, so every OWNER assigns its own points in
plaintext and secret-shares only its per-cluster sums and counts (k x (d + 1) integers); the
committee range-checks each owner's row, adds the rows and opens the totals -- the MPC cost no
longer depends on the number of points.

An owner's row (cluster-major, at the common fixed-point scale of ``common.multipliers``):
``[S_0,0 .. S_0,d-1, n_0, S_1,0 .. n_1, ...]`` where ``n_j`` is the number of its points whose
nearest centroid is j (ties: the lowest j, as ``numpy.argmin``) and ``S_j,c`` the sum of their
column c.  Checked inside the MPC, per owner (``influence_checks``, proven by the owner's
witness bits: a failure aborts the session naming the owner, so the task is refunded):
``0 <= n_j``, ``sum_j n_j <= max_rows``, and ``n_j lo_c <= S_j,c <= n_j hi_c`` -- its sums
are those of n_j points inside the declared ranges, so an owner can move a centroid only as
legal points it chose could.

Output (every node computes it the same, exact integers): the new centroids (one decimal more
than the data, as ``ml.kmeans``; an empty cluster keeps its centroid) and the cluster sizes,
shape ``(k, d + 1)`` -- the next step's ``centroids``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import (
    FEDERATED_KERNEL,
    NUMERIC,
    bounds_at_common,
    checks_bits,
    cluster_labels,
    common_scale,
    constraint,
    multipliers,
    public_uniform,
    round_div,
)
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import parse_decimal

if TYPE_CHECKING:
    import numpy as np

    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.schema import Column
    from dnode.scheduler.programs.tables import Table

EXTRA_DIGITS = 1  # centroids carry one decimal more than the data (as ml.kmeans)
MAX_FIELD_BITS = 128


class KMeansStep(ProgramSpec):
    family = "ml"
    capability = "mpc"
    kernel = FEDERATED_KERNEL
    input_types = NUMERIC
    max_columns = 15
    args = (
        Arg("centroids", "decimals", "the current centroids: k rows of the columns, row-major "
            "(at most one decimal more than the data)", required=True),
    )  # fmt: skip
    reveals = (
        "the per-cluster sums and sizes over every owner's points for the given centroids, "
        "i.e. the next centroids and sizes (the centroids given are public in the params)"
    )
    revealed_to = "the committee, then everyone (on-chain); owners read every step's centroids"
    cost = "per owner: 2 k d + k + 1 checked range checks of its one row (independent of rows)"

    # ---- arguments ---------------------------------------------------------------------

    def dims(self, params: TaskView) -> int:
        return len(params.columns)

    def centroid_scale(self, params: TaskView) -> int:
        return common_scale(params) + EXTRA_DIGITS

    def k(self, params: TaskView) -> int:
        return len(params.args.get("centroids") or ()) // max(1, self.dims(params))

    def centroids(self, params: TaskView) -> list[list[int]]:
        """The given centroids as integers at the centroid scale (validated)."""
        cols, d = params.columns, self.dims(params)
        vals = [parse_decimal(v) for v in params.args.get("centroids") or ()]
        if not vals or len(vals) % d:
            raise InvalidTaskParams(
                f"{self.name}: centroids needs k x {d} values (k rows of the columns), "
                f"got {len(vals)}"
            )
        cs = self.centroid_scale(params)
        out: list[list[int]] = []
        for i in range(len(vals) // d):
            row = []
            for c, v in zip(cols, vals[i * d : (i + 1) * d], strict=True):
                if not c.lo <= v <= c.hi:
                    raise InvalidTaskParams(
                        f"{self.name}: centroid value {v} is outside column {c.name!r}'s "
                        f"declared range [{c.lo}, {c.hi}]"
                    )
                if (v * 10**cs).denominator != 1:
                    raise InvalidTaskParams(
                        f"{self.name}: centroid value {v} has more than {cs} decimals"
                    )
                row.append(int(v * 10**cs))
            out.append(row)
        return out

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        k, d = len(self.centroids(params)), self.dims(params)
        if k > params.max_rows:
            raise InvalidTaskParams(
                f"{self.name}: k={k} clusters but the task admits at most {params.max_rows} rows"
            )
        if k * (d + 1) > MAX_RESULT_VALUES:
            raise InvalidTaskParams(
                f"{self.name}: {k} centroids of {d} column(s) plus sizes are {k * (d + 1)} "
                f"values; at most {MAX_RESULT_VALUES} fit the on-chain result"
            )
        self.field_bits(params)

    @staticmethod
    def initial(columns: Sequence[Column], k: int, seed: int) -> list[list[Fraction]]:
        """Public initial centroids drawn from the declared ranges by ``seed``: the same
        draws as ``ml.kmeans --seed`` (``KMeans.initial``), for a driver's first step."""
        return [[public_uniform(seed, f"{i}:{j}", c.lo, c.hi, c.scale)
                 for j, c in enumerate(columns)] for i in range(k)]  # fmt: skip

    # ---- owner side --------------------------------------------------------------------

    def width(self, params: TaskView) -> int:
        return self.k(params) * (self.dims(params) + 1)

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        """The owner's ONE row: per cluster its points' column sums and their count, each
        point assigned to its nearest given centroid (exact integers)."""
        return [int(v) for v in local_sums(params, table_points(params, table),
                                           self.centroids(params))]  # fmt: skip

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        """The static bounds of a row of sums over at most max_rows points (the owner-side
        refusal of an impossible row); inside the MPC the ``influence_checks`` apply."""
        n = params.max_rows
        big = [max(1, abs(a), abs(b)) for a, b in bounds_at_common(params)]
        return tuple(v for _ in range(self.k(params)) for v in (*(n * b for b in big), n)), 0

    # ---- engine side -------------------------------------------------------------------

    def influence_checks(self, params: TaskView) -> list[tuple[list[tuple[int, int]], int, int]]:
        """Per owner row: 0 <= n_j, sum_j n_j <= max_rows, n_j lo_c <= S_j,c <= n_j hi_c."""
        n, d, k = params.max_rows, self.dims(params), self.k(params)
        w = d + 1
        out = [constraint([(j * w + d, 1)], n) for j in range(k)]
        out.append(constraint([(j * w + d, -1) for j in range(k)], n, const=n))
        for j in range(k):
            for c, (lo, hi) in enumerate(bounds_at_common(params)):
                span = n * (hi - lo)
                out.append(constraint([(j * w + c, 1), (j * w + d, -lo)], span))
                out.append(constraint([(j * w + d, hi), (j * w + c, -1)], span))
        return out

    def field_bits(self, params: TaskView) -> int:
        n = params.max_rows
        # the total of every owner's row (each pinned by the checks), and the checks' width
        need = len(params.owners) * n * max(max(1, abs(a), abs(b))
                                            for a, b in bounds_at_common(params))  # fmt: skip
        bits = max(64, need.bit_length() + 2, checks_bits(self.influence_checks(params)) + 4)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the declared ranges with max_rows={n} need {bits}-bit secure "
                f"integers (at most {MAX_FIELD_BITS}); narrow the ranges or lower max_rows"
            )
        return bits

    def private_refusal(self, params: TaskView) -> str | None:
        return "its output is the next step's public centroids"

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        return {"program": self.name}

    # ---- output ------------------------------------------------------------------------

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (self.k(params), self.dims(params) + 1)

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return cluster_labels(self.k(params), params)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if revealed.get("error"):
            raise InvalidTaskParams(str(revealed["error"]))
        sums = [int(v) for v in revealed["sums"]]
        new, sizes = next_centroids(params, sums, self.centroids(params))
        scale = 10 ** self.centroid_scale(params)
        vals: list[Fraction] = []
        for row, size in zip(new, sizes, strict=True):
            vals += [Fraction(v, scale) for v in row]
            vals.append(Fraction(size))
        if sum(sizes) < self.k(params):
            raise InvalidTaskParams(
                f"{self.name}: k={self.k(params)} clusters but only {sum(sizes)} point(s)"
            )
        return Output(tuple(vals), sum(sizes), self.out_shape(params), self.labels(params))


def table_points(params: TaskView, table: Table) -> np.ndarray:
    """An owner's points (n, d) as integers at the common scale (object dtype: exact)."""
    import numpy as np  # lazy: specs import without numpy

    mult = multipliers(params)
    cols = [np.array([int(v) for v in col], dtype=object) * m
            for col, m in zip(table.data, mult, strict=True)]  # fmt: skip
    if not cols or not len(cols[0]):
        return np.zeros((0, len(mult)), dtype=object)
    return np.column_stack(cols)


def assign(points: np.ndarray, cents: list[list[int]]) -> np.ndarray:
    """Index of each point's nearest centroid (ties: the lowest index), exactly: points at the
    common scale, centroids at the centroid scale (``EXTRA_DIGITS`` more)."""
    import numpy as np  # lazy: specs import without numpy

    c = np.array(cents, dtype=object)
    if not len(points):
        return np.zeros(0, dtype=np.int64)
    x = points * 10**EXTRA_DIGITS
    big = max(1, int(np.abs(x).max()), int(np.abs(c).max()))
    if (6 * c.shape[1] * big * big).bit_length() < 62:  # exact in int64, and fast
        x, c = x.astype(np.int64), c.astype(np.int64)
    # argmin |x - c|^2 = argmax 2 x.c - |c|^2 (the same score as ml.kmeans's kernel)
    scores = 2 * (x @ c.T) - (c * c).sum(axis=1)[None, :]
    return np.argmax(scores, axis=1)


def local_sums(params: TaskView, points: np.ndarray, cents: list[list[int]]) -> list[int]:
    """The owner's row: per cluster (in order) its points' column sums, then their count."""

    k, d = len(cents), len(params.columns)
    lab = assign(points, cents)
    out: list[int] = []
    for j in range(k):
        mine = points[lab == j]
        out += [int(sum(mine[:, c].tolist())) for c in range(d)] if len(mine) else [0] * d
        out.append(int(len(mine)))
    return out


def next_centroids(
    params: TaskView, sums: list[int], cents: list[list[int]]
) -> tuple[list[list[int]], list[int]]:
    """The new centroids (integers at the centroid scale) and sizes from the total row; an
    empty cluster keeps its centroid."""
    d = len(params.columns)
    w = d + 1
    extra = 10**EXTRA_DIGITS
    new, sizes = [], []
    for j, old in enumerate(cents):
        size = sums[j * w + d]
        sizes.append(size)
        new.append([round_div(sums[j * w + c] * extra, size) for c in range(d)] if size
                   else list(old))  # fmt: skip
    return new, sizes


register(
    KMeansStep(
        name="ml.kmeans_step",
        description="one federated k-means (Lloyd) step: owners assign their points to the "
        "given centroids locally; the committee range-checks and adds per-cluster sums",
    )
)
