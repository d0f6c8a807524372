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

With ``--epsilon``/``--rho`` (differential privacy): the features are clipped to their
declared ranges inside the MPC, and every opened statistic -- the scaling sums and sums of
squares, then per Newton iteration the gradient (with the residual sum) and the Hessian (with
its intercept row and column) -- gets discrete Laplace noise sampled inside the MPC before it
is opened: noisy sufficient statistics per iteration (the SuLQ pattern, Blum, Dwork, McSherry,
Nissim, PODS 2005; a noisy Newton method as in Avella-Medina, Bradshaw, Loh, "Differentially
private inference via noisy optimization", Annals of Statistics 2023). The committee therefore
sees only noisy gradients and Hessians, and the weights are post-processing. We chose it over
output and objective perturbation (Chaudhuri, Monteleoni, Sarwate, JMLR 2011), which need the
exact minimiser of a strongly convex objective and a sensitivity in terms of a smooth,
exactly computed loss: the kernel's piecewise-linear sigmoid and finitely many Newton steps
give neither, while per-iteration noise needs only the per-row bounds below. The budget is
split equally over 2 + 5 x ``iterations`` releases, one per unit. Per changed row (residual
f(z) - y in [-1, 1] at scale q m, sigmoid slope in [0, D] at scale m, features within their
bounds B; one row out, one in): gradient 2 q m sum_j B_j and residual sum 2 q m; Hessian 2 D
sum_a sum_b B_a B_b, its intercept column 2 D sum_j B_j, its corner D (f' >= 0). The noisy
Hessian is symmetrised and its eigenvalues floored (post-processing) so every Newton step is
defined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.dp import Release
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import NUMERIC, check_logreg_params
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.stats.spec import _span_sq, clip_bits

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
        "(to the committee; with --epsilon/--rho all of them noisy); output: the coefficients "
        "and intercept"
    )
    revealed_to = "the committee at every iteration, then everyone (or only the requester)"
    cost = "per iteration: 4 checked comparisons per row, columns^2 products per row"
    dp = True  # noisy scaling statistics, gradients and Hessians (per Newton iteration)

    def features(self, params: TaskView) -> int:
        return len(params.columns) - 1

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        check_logreg_params(self.name, params)
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
        plan = self.dp_plan(params)
        if plan is not None:  # a noisy value must fit: |Z| < 2**noise_bits
            bits = max(bits, max(need.bit_length(), plan.noise_bits) + 4)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the declared ranges with max_rows={n} need {bits}-bit secure "
                f"integers (at most {MAX_FIELD_BITS}); narrow the ranges or lower max_rows"
            )
        return bits

    def dp_releases(self, params: TaskView) -> list[Release]:
        """In encoded units (features clipped to their declared ranges in the MPC, the label
        to {0, 1}): the scaling sums (sum_j span_j) and sums of squares; per iteration the
        gradient X^T (f - y) and the residual sum at scale q m, and the Hessian X^T diag(f') X
        with sum_i f'_i x_i and sum_i f'_i at scale m (see the module docstring)."""
        feats = params.columns[:-1]
        bnd = [max(1, c.bound) for c in feats]
        qm = (1 << self.weight_bits(params)) << SLOPE_BITS
        top = max(slope_ints(1 << SLOPE_BITS))  # the largest f' at scale m
        out = [
            Release("scale-sum", len(feats), sum(c.enc_hi - c.enc_lo for c in feats) or 1),
            Release("scale-sumsq", len(feats), sum(_span_sq(c) for c in feats) or 1),
        ]
        d = len(feats)
        for it in range(int(params.args.get("iterations", 8))):
            # one release per unit (noise follows the L1 sensitivity of the whole release: the
            # intercept's entries, on the scale of 1, would drown in the features' noise)
            out += [
                Release(f"grad-x-{it}", d, 2 * qm * sum(bnd)),
                Release(f"grad-1-{it}", 1, 2 * qm),
                Release(f"hess-xx-{it}", d * d, 2 * top * sum(a * b for a in bnd for b in bnd)),
                Release(f"hess-x-{it}", d, 2 * top * sum(bnd)),
                Release(f"hess-1-{it}", 1, top),
            ]
        return out

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        a = params.args
        plan = self.dp_plan(params)
        feats = params.columns[:-1]
        dp = {} if plan is None else {
            "dp": plan.kernel_args(),
            "clip": {"lo": [c.enc_lo for c in feats], "hi": [c.enc_hi for c in feats],
                     "bits": clip_bits(feats)},
        }  # fmt: skip
        return dp | {
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


def slope_ints(m_scale: int) -> list[int]:
    """The prefix sums of the sigmoid's slope changes at scale ``m_scale`` (its slope on each
    segment, in order; the kernel's f' takes exactly these values): all >= 0, the last 0."""
    v = [0.0, *(1 / (1 + math.exp(-k)) for k in KNOTS[1:-1]), 1.0]
    s = [(v[i + 1] - v[i]) / (KNOTS[i + 1] - KNOTS[i]) for i in range(len(KNOTS) - 1)]
    cs = [round(c * m_scale) for c in (b - a for a, b in zip([0.0, *s], [*s, 0.0], strict=True))]
    return [sum(cs[: j + 1]) for j in range(len(cs))]


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
