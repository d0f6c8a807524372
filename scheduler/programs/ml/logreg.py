"""``ml.logreg``: binary logistic regression of the last named column (0/1) on the others
(kernel: ``node.engines.mpc.kernels.logreg``).

Algorithm (secure aggregation of gradients; the model is public to the committee between
iterations):

1. feature scaling from secure statistics: the committee opens every column's sum and sum of
   squares (as ``mpc.variance``) and standardises with the population mean and std -- a public
   affine map, folded into the weights, so the secret data are never rescaled;
2. the label is clamped to {0, 1} inside the MPC (a label of 7 counts as 1);
3. Newton's method, with the weights public between iterations: ``z = X a + c`` is linear in
   the secret X (no product); the sigmoid is the piecewise-linear interpolation of the logistic
   function at z = -5, -2, 2, 5 (four checked comparisons and four products per row), its
   derivative comes from the same comparison bits; the committee opens the gradient
   ``X^T (f(z) - y)`` and the Hessian ``X^T diag(f'(z)) X`` (with the intercept's row and
   column) and takes the Newton step of scikit-learn's ``LogisticRegression(C)`` objective
   (``1/2 |w|^2 + C sum log-loss``, intercept not penalised) on standardised features.

Revealed to the committee: the column sums and sums of squares (once); per iteration the
gradient and the Hessian (the weighted Gram matrix of the rows whose score lies in (-5, 5)),
hence the weights; never a row, its score or its label.  The output -- the
coefficients in the columns' own units and the intercept -- is public when it fits the
on-chain result (at most 15 features), else it must be a private result (sealed to the
requester; the committee, which saw the gradients, can compute it too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import NUMERIC
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import parse_decimal

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView

KERNEL = "dnode.node.engines.mpc.kernels.logreg"
KNOTS = (-5.0, -2.0, 2.0, 5.0)  # the piecewise-linear sigmoid's knots
SLOPE_BITS = 16  # slopes of the sigmoid as integers at scale 2**16
MAX_FIELD_BITS = 128
MAX_ITERATIONS = 1000


class LogReg(ProgramSpec):
    family = "ml"
    capability = "mpc"
    kernel = KERNEL
    input_types = NUMERIC
    min_columns = 2
    max_columns = 32  # a row's width in the MPC (ml.logreg_step: 64 features)
    moments = 1  # the kernel opens sums of squares (scaling): witnesses bound them too
    args = (
        Arg("c", "decimal", "inverse L2 strength (scikit-learn LogisticRegression C)",
            default="1"),
        Arg("iterations", "int", "Newton steps (each: 4 comparisons per row)", default=8),
    )  # fmt: skip
    reveals = (
        "column sums and sums of squares (scaling), then every iteration's gradient "
        "(to the committee); output: the coefficients and intercept"
    )
    revealed_to = "the committee at every iteration, then everyone (or only the requester)"
    cost = "per iteration: 4 checked comparisons per row, columns^2 products per row"

    def features(self, params: TaskView) -> int:
        return len(params.columns) - 1

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        y = params.columns[-1]
        if y.type != "int" or y.lo != 0 or y.hi != 1:
            raise InvalidTaskParams(
                f"{self.name}: the last column ({y.name!r}) is the label and must be declared "
                "int with range [0, 1]"
            )
        if parse_decimal(str(params.args.get("c", "1"))) <= 0:
            raise InvalidTaskParams(f"{self.name}: c (scikit-learn C) must be > 0")
        it = int(params.args.get("iterations", 8))
        if not 1 <= it <= MAX_ITERATIONS:
            raise InvalidTaskParams(f"{self.name}: iterations must be 1..{MAX_ITERATIONS}")
        if len(params.columns) > MAX_RESULT_VALUES and not getattr(params, "result_key", ""):
            raise InvalidTaskParams(
                f"{self.name}: {self.features(params)} coefficients and an intercept do not fit "
                f"the on-chain result ({MAX_RESULT_VALUES} values); ask for a private result"
            )
        self.field_bits(params)

    def weight_bits(self, params: TaskView) -> int:
        """Weights enter the MPC as integers at 2**bits: rounding them moves a score by at
        most sum_j bound_j / 2**(bits + 1) <= 2**-9."""
        return sum(c.bound for c in params.columns[:-1]).bit_length() + 8

    def field_bits(self, params: TaskView) -> int:
        n = params.max_rows
        b = max(1, *(c.bound for c in params.columns))
        qm = 1 << (self.weight_bits(params) + SLOPE_BITS)
        grad = n * 2 * qm * b  # |sum_i (f(z_i) - y_i) x_ij| at scale q m
        need = max(grad, n * b * b << SLOPE_BITS)  # the Hessian, sums of squares
        bits = max(80, need.bit_length() + 4)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the declared ranges with max_rows={n} need {bits}-bit secure "
                f"integers (at most {MAX_FIELD_BITS}); narrow the ranges or lower max_rows"
            )
        return bits

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        a = params.args
        return {
            "C": str(a.get("c", "1")),
            "iterations": int(a.get("iterations", 8)),
            "scales": [c.scale for c in params.columns],
            "bounds": [c.bound for c in params.columns],
            "weight_bits": self.weight_bits(params),
            "slope_bits": SLOPE_BITS,
            "max_cmp_bits": self.field_bits(params) - 1,
        }

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(params.columns),)

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return ((*(c.name for c in params.columns[:-1]), "intercept"),)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        """``model``: coefficients (original units) and intercept, integers at 2**-weight_bits."""
        if revealed.get("error"):
            raise InvalidTaskParams(str(revealed["error"]))
        q = 1 << self.weight_bits(params)
        vals = tuple(Fraction(int(v), q) for v in revealed["model"])
        return Output(vals, rows, self.out_shape(params), self.labels(params))


def standardise(sums: list[int], sumsq: list[int], scales: list[int], n: int
                ) -> tuple[list[float], list[float]]:  # fmt: skip
    """Population mean and std of each feature (column units) from the opened statistics; a
    constant column gets std 1 (scikit-learn's StandardScaler does the same)."""
    mu, sd = [], []
    for s, s2, sc in zip(sums, sumsq, scales, strict=True):
        m = Fraction(s, n * 10**sc)
        var = Fraction(s2, n * 10 ** (2 * sc)) - m * m
        mu.append(float(m))
        sd.append(math.sqrt(float(var)) if var > 0 else 1.0)
    return mu, sd


register(
    LogReg(name="ml.logreg", description="binary logistic regression (last column: 0/1 label)")
)
