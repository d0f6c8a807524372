"""``ml.ridge``: ridge (alpha > 0) or ordinary least-squares (alpha = 0) regression of the
last named column on the others, with an intercept (kernel: the statistics kernel).

The MPC opens the sufficient statistics only: the column sums and the Gram matrix ``Z^T Z`` of
``Z = [X, y]`` (one checked secure matrix product per owner, as ``mpc.covariance``).  Every
node then solves, in exact rational arithmetic, scikit-learn's ``Ridge(alpha,
fit_intercept=True)``: centre X and y with the opened means, ``(Xc^T Xc + alpha I) w = Xc^T yc``,
``intercept = mean(y) - mean(X) . w``.  No feature scaling is applied (scikit-learn's Ridge
applies none either): alpha acts in the columns' own units.

Revealed (to the committee, then everyone, unless the result is private): the column sums,
X^T X, X^T y and y^T y -- the exact sufficient statistics of the fit, i.e. what the
coefficients, the residual sum of squares and the covariance of the columns are made of.

With ``--epsilon``/``--rho`` (differential privacy) the same statistics are clipped to the
declared ranges and noised inside the MPC before they are opened (sufficient-statistics
perturbation: Sheffet, "Differentially private ordinary least squares", ICML 2017; Wang,
"Revisiting differentially private linear regression", NeurIPS 2018); the fit is
post-processing of the noisy statistics (alpha > 0 keeps it well posed).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.registry import Arg, Output, register
from dnode.scheduler.programs.schema import parse_decimal
from dnode.scheduler.programs.stats.spec import Stat

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView


def solve(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    """Exact Gauss-Jordan elimination; InvalidTaskParams if ``a`` is singular."""
    n = len(b)
    m = [[*row, bi] for row, bi in zip(a, b, strict=True)]
    for col in range(n):
        piv = next((r for r in range(col, n) if m[r][col] != 0), None)
        if piv is None:
            raise InvalidTaskParams(
                "ml.ridge: the normal equations are singular (a constant or duplicate column); "
                "use alpha > 0"
            )
        m[col], m[piv] = m[piv], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(n):
            if r != col and m[r][col] != 0:
                f = m[r][col]
                m[r] = [v - f * w for v, w in zip(m[r], m[col], strict=True)]
    return [m[i][n] for i in range(n)]


class Ridge(Stat):
    family = "ml"
    needs = ("sum", "gram")
    squares = True
    min_columns = 2
    max_columns = 16
    args = (
        Arg("alpha", "decimal", "L2 penalty (scikit-learn Ridge alpha; 0: least squares)",
            default="1"),
    )  # fmt: skip
    reveals = "the column sums and Z^T Z for Z = [X, y] (X^T X, X^T y, y^T y)"
    cost = "one secure matrix product (columns^2 products per row), one opening"

    def validate(self, params: TaskView) -> None:
        if parse_decimal(str(params.args.get("alpha", "1"))) < 0:
            raise InvalidTaskParams(f"{self.name}: alpha must be >= 0")
        super().validate(params)

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(params.columns),)

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return ((*(c.name for c in params.columns[:-1]), "intercept"),)

    def fit(self, params: TaskView, r: Mapping[str, Any], n: int) -> list[Fraction]:
        """Coefficients of the features, then the intercept (exact)."""
        if n < 2:
            raise InvalidTaskParams(f"{self.name}: needs at least 2 rows, got {n}")
        cols = params.columns
        w = len(cols)
        sums = [c.decode(int(v)) for c, v in zip(cols, r["sum"], strict=True)]
        mean = [s / n for s in sums]
        g = [int(v) for v in r["gram"]]

        def cen(i: int, j: int) -> Fraction:  # centred cross product of columns i, j
            # exact Gram matrices are symmetric; noisy ones (DP) are averaged (post-processing)
            raw = Fraction(g[i * w + j] + g[j * w + i], 2 * 10 ** (cols[i].scale + cols[j].scale))
            return raw - n * mean[i] * mean[j]

        d = w - 1
        alpha = parse_decimal(str(params.args.get("alpha", "1")))
        a = [[cen(i, j) + (alpha if i == j else 0) for j in range(d)] for i in range(d)]
        coef = solve(a, [cen(i, d) for i in range(d)])
        return [*coef, mean[d] - sum(c * m for c, m in zip(coef, mean, strict=False))]

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        vals = self.fit(params, revealed, rows)
        return Output(tuple(vals), rows, self.out_shape(params), self.labels(params))


register(
    Ridge(
        name="ml.ridge",
        description="ridge / least-squares regression of the last column on the others",
    )
)
