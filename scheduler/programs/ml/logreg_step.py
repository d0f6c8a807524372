"""``ml.logreg_step``: ONE federated Newton step of binary logistic regression from public
weights (kernel: ``node.engines.mpc.kernels.federated``; a chain of these is
``dnode ml logreg --federated``, ``Client.logreg``).

Why: ``ml.logreg`` evaluates the sigmoid of every row inside the MPC (4 checked comparisons
per row and iteration: about 2,000 s for 7,000 x 54, docs/benchmarks.md), although the
weights of an iteration are public to the committee anyway.  In the federated mode (federated
Newton with secure aggregation of gradients and Hessians: Hardy et al. 2017; secure
aggregation: Bonawitz et al., CCS 2017) the weights are in the task's params, so every OWNER
computes on its own rows, in plaintext, and secret-shares only its sufficient statistics:

    [n, sum x_j (d), sum x_j^2 (d), G (d + 1), H (upper triangle of (d + 1) x (d + 1))]

with x the encoded integers (x 10**scale), u = [x, 1], ``e_i = round((p_i - y_i) 2**F)`` and
``s_i = round(p_i (1 - p_i) 2**F)`` for ``p_i = sigmoid(x_i . w + b)`` (column units; exact
logistic function, F = ``SIG_BITS``): ``G = sum_i e_i u_i``, ``H = sum_i s_i u_i u_i^T`` --
exact integers.  The committee range-checks each owner's row (``influence_checks``, proven
by its witness bits: every entry within what n rows inside the declared ranges can give,
where n is the owner's own count, at most ``max_rows``; ``H_jj + H_kk +- 2 H_jk >= 0``),
adds the rows and opens the total.

Every node then takes the Newton step of scikit-learn's ``LogisticRegression(C)`` objective
(``1/2 |beta|^2 + C sum log-loss``, intercept free) on the features standardised with the
opened population means and stds (as ``ml.logreg``), in exact rational arithmetic
(``newton``), and outputs the new weights in column units, rounded to ``WEIGHT_DECIMALS``:
the next step's ``weights``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.ml.common import (
    FEDERATED_KERNEL,
    NUMERIC,
    check_logreg_params,
    checks_bits,
    constraint,
)
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES, Arg, Output, ProgramSpec, register
from dnode.scheduler.programs.schema import parse_decimal

if TYPE_CHECKING:
    import numpy as np

    from dnode.scheduler.programs.registry import TaskView
    from dnode.scheduler.programs.tables import Table

SIG_BITS = 20  # sigmoid values and weights p(1 - p) as integers at 2**20
WEIGHT_DECIMALS = 12  # the output weights (column units), exact decimals
STD_DECIMALS = 12  # the population stds (column units), truncated square roots
MAX_FIELD_BITS = 128
MAX_FEATURES = 64


class LogRegStep(ProgramSpec):
    family = "ml"
    capability = "mpc"
    kernel = FEDERATED_KERNEL
    input_types = NUMERIC
    min_columns = 2
    max_columns = MAX_FEATURES + 1
    args = (
        Arg("weights", "decimals", "the current model: one coefficient per feature (column "
            "units), then the intercept (default: all 0)"),
        Arg("c", "decimal", "inverse L2 strength (scikit-learn LogisticRegression C)",
            default="1"),
    )  # fmt: skip
    reveals = (
        "the sums of the owners' gradients and Hessians for the given weights, and every "
        "feature's sum and sum of squares (the scaling); i.e. the next weights"
    )
    revealed_to = "the committee, then everyone (or only the requester); owners read every "
    "step's weights"
    cost = "per owner: about (d + 1)(d + 2) + 4 d checked range checks of its one row"

    def features(self, params: TaskView) -> int:
        return len(params.columns) - 1

    def weights(self, params: TaskView) -> list[Fraction]:
        d = self.features(params)
        w = [parse_decimal(v) for v in params.args.get("weights") or ()]
        if not w:
            return [Fraction(0)] * (d + 1)
        if len(w) != d + 1:
            raise InvalidTaskParams(
                f"{self.name}: weights needs {d} coefficients and an intercept, got {len(w)}"
            )
        return w

    def validate(self, params: TaskView) -> None:
        super().validate(params)
        check_logreg_params(self.name, params)
        self.weights(params)
        if len(params.columns) > MAX_RESULT_VALUES and not getattr(params, "result_key", ""):
            raise InvalidTaskParams(
                f"{self.name}: {self.features(params)} coefficients and an intercept do not fit "
                f"the on-chain result ({MAX_RESULT_VALUES} values); ask for a private result"
            )
        self.field_bits(params)

    # ---- the row's layout --------------------------------------------------------------

    def _bounds(self, params: TaskView) -> list[int]:
        """|u_j| bounds of the augmented row u = [x, 1] (encoded units)."""
        return [max(1, c.bound) for c in params.columns[:-1]] + [1]

    def _pairs(self, params: TaskView) -> list[tuple[int, int]]:
        d1 = self.features(params) + 1
        return [(a, b) for a in range(d1) for b in range(a, d1)]

    def width(self, params: TaskView) -> int:
        d = self.features(params)
        return 1 + 2 * d + (d + 1) + len(self._pairs(params))

    def _offsets(self, params: TaskView) -> tuple[int, int, int, int]:
        d = self.features(params)
        return 1, 1 + d, 1 + 2 * d, 1 + 3 * d + 1  # sums, squares, G, H

    # ---- owner side --------------------------------------------------------------------

    def encode_owner(self, params: TaskView, table: Table) -> list[int]:
        """The owner's ONE row of sufficient statistics for the given weights."""
        import numpy as np  # lazy: specs import without numpy

        d = self.features(params)
        x = np.array([[int(v) for v in col] for col in table.data[:d]], dtype=object).T
        y = np.array([int(v) for v in table.data[d]] if table.data else [], dtype=object)
        x = x.reshape(len(y), d)
        return local_statistics(params, x, y)

    def influence(self, params: TaskView) -> tuple[tuple[int, ...], int] | None:
        """Static bounds of each statistic over at most max_rows rows (the owner-side
        refusal of an impossible row); inside the MPC the ``influence_checks`` apply."""
        n, b, f = params.max_rows, self._bounds(params), 1 << SIG_BITS
        d = self.features(params)
        out = [n, *(n * v for v in b[:d]), *(n * v * v for v in b[:d]), *(n * f * v for v in b)]
        out += [max(1, n * (f >> 2) * b[i] * b[j]) for i, j in self._pairs(params)]
        return tuple(out), 0

    # ---- engine side -------------------------------------------------------------------

    def influence_checks(self, params: TaskView) -> list[tuple[list[tuple[int, int]], int, int]]:
        """Per owner row (n its count): n <= max_rows; n lo_j <= sum x_j <= n hi_j;
        0 <= sum x_j^2 <= n B_j^2; |G_j| <= n 2**F B_j; 0 <= H_jj <= n 2**F B_j^2 / 4;
        H_jj + H_kk +- 2 H_jk >= 0 (a sum of s_i (u_j +- u_k)^2)."""
        n, d, f = params.max_rows, self.features(params), 1 << SIG_BITS
        b = self._bounds(params)
        o_s, o_q, o_g, o_h = self._offsets(params)
        pairs = self._pairs(params)
        hpos = {p: o_h + i for i, p in enumerate(pairs)}
        out = [constraint([(0, 1)], n), constraint([(0, -1)], n, const=n)]
        for j, c in enumerate(params.columns[:-1]):
            span = n * (c.enc_hi - c.enc_lo)
            out.append(constraint([(o_s + j, 1), (0, -c.enc_lo)], span))
            out.append(constraint([(0, c.enc_hi), (o_s + j, -1)], span))
            out.append(constraint([(o_q + j, 1)], n * b[j] ** 2))
            out.append(constraint([(0, b[j] ** 2), (o_q + j, -1)], n * b[j] ** 2))
        for j in range(d + 1):
            out.append(constraint([(0, f * b[j]), (o_g + j, 1)], 2 * n * f * b[j]))
            out.append(constraint([(0, f * b[j]), (o_g + j, -1)], 2 * n * f * b[j]))
            hj = hpos[(j, j)]
            out.append(constraint([(hj, 1)], n * (f >> 2) * b[j] ** 2))
            out.append(constraint([(0, (f >> 2) * b[j] ** 2), (hj, -1)], n * (f >> 2) * b[j] ** 2))
        for j, k in pairs:
            if j == k:
                continue
            up = 2 * n * (f >> 2) * (b[j] ** 2 + b[k] ** 2)
            jj, kk, jk = hpos[(j, j)], hpos[(k, k)], hpos[(j, k)]
            out.append(constraint([(jj, 1), (kk, 1), (jk, 2)], up))
            out.append(constraint([(jj, 1), (kk, 1), (jk, -2)], up))
        return out

    def field_bits(self, params: TaskView) -> int:
        got = self.influence(params)
        assert got is not None
        # the total of every owner's row (each pinned by the checks), and the checks' width
        need = max(got[0]) * 4 * len(params.owners)
        bits = max(64, need.bit_length() + 2, checks_bits(self.influence_checks(params)) + 4)
        if bits > MAX_FIELD_BITS:
            raise InvalidTaskParams(
                f"{self.name}: the declared ranges with max_rows={params.max_rows} need "
                f"{bits}-bit secure integers (at most {MAX_FIELD_BITS}); narrow the ranges or "
                "lower max_rows"
            )
        return bits

    def kernel_args(self, params: TaskView) -> dict[str, Any]:
        return {"program": self.name}

    # ---- output ------------------------------------------------------------------------

    def out_shape(self, params: TaskView) -> tuple[int, ...]:
        return (len(params.columns),)

    def labels(self, params: TaskView) -> tuple[tuple[str, ...], ...]:
        return ((*(c.name for c in params.columns[:-1]), "intercept"),)

    def finish(self, params: TaskView, revealed: Mapping[str, Any], rows: int) -> Output:
        if revealed.get("error"):
            raise InvalidTaskParams(str(revealed["error"]))
        total = [int(v) for v in revealed["sums"]]
        if total[0] < 2:
            raise InvalidTaskParams(f"{self.name}: only {total[0]} row(s) of data")
        new = newton(params, total)
        return Output(tuple(new), total[0], self.out_shape(params), self.labels(params))


# ---- owner-side statistics and the public Newton step (pure functions: tested directly) ----


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function without overflow for large |z|."""
    import numpy as np  # lazy: specs import without numpy

    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def local_statistics(params: TaskView, x: np.ndarray, y: np.ndarray) -> list[int]:
    """An owner's row for rows ``x`` (n, d encoded integers) and labels ``y`` (0/1): see the
    module docstring.  The sigmoid is float64 (owner-local); everything after its rounding
    to 2**-F is exact integer arithmetic."""
    import numpy as np  # lazy: specs import without numpy

    d = len(params.columns) - 1
    n = len(y)
    w = LOGREG_STEP.weights(params)
    scales = [c.scale for c in params.columns[:-1]]
    out = [n]
    xi = np.asarray(x, dtype=object).reshape(n, d)
    out += [int(sum(xi[:, j].tolist())) for j in range(d)]
    out += [int(sum((v * v for v in xi[:, j].tolist()), 0)) for j in range(d)]
    f = 1 << SIG_BITS
    if n:
        xf = np.asarray(xi, dtype=np.float64) / np.array([10.0**s for s in scales])
        z = xf @ np.array([float(v) for v in w[:d]]) + float(w[d])
        p = _sigmoid(z)
        e = np.rint((p - np.asarray(y, dtype=np.float64)) * f).astype(np.int64)
        s = np.rint(p * (1 - p) * f).astype(np.int64)
        u = np.column_stack([xi, np.ones(n, dtype=object)])
        bound = max(1, *(max(1, c.bound) for c in params.columns[:-1]))
        if (n * f * bound * bound).bit_length() < 62:  # exact in int64 (integer matmul)
            u64 = u.astype(np.int64)
            g = e @ u64
            h = (u64 * s[:, None]).T @ u64
        else:  # exact Python integers
            g = np.array(e, dtype=object) @ u
            h = (u * np.array(s, dtype=object)[:, None]).T @ u
    else:
        g = np.zeros(d + 1, dtype=object)
        h = np.zeros((d + 1, d + 1), dtype=object)
    out += [int(v) for v in g]
    out += [int(h[a, b]) for a in range(d + 1) for b in range(a, d + 1)]
    return out


def isqrt_fraction(v: Fraction, decimals: int) -> Fraction:
    """sqrt(v) truncated to ``decimals`` decimals, exactly (the same on every machine)."""
    scale = 10**decimals
    return Fraction(math.isqrt(v.numerator * scale * scale // v.denominator), scale)


def scaling(params: TaskView, total: list[int]) -> tuple[list[Fraction], list[Fraction]]:
    """Population means and stds (column units) from the total row; a constant column gets
    std 1 (as scikit-learn's StandardScaler)."""
    d = len(params.columns) - 1
    n = total[0]
    mu, sd = [], []
    for j, c in enumerate(params.columns[:-1]):
        m = Fraction(total[1 + j], n * 10**c.scale)
        var = Fraction(total[1 + d + j], n * 10 ** (2 * c.scale)) - m * m
        s = isqrt_fraction(var, STD_DECIMALS) if var > 0 else Fraction(0)
        mu.append(m)
        sd.append(s if s > 0 else Fraction(1))
    return mu, sd


def solve(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    """The exact solution of a x = b: the system is brought to integers (a common
    denominator) and eliminated fraction-free (Bareiss 1968), so the numbers grow linearly
    and the result is the same rational on every machine.  The Newton matrix of honest
    statistics is positive definite (a nonzero pivot always exists); a singular one, which
    only statistics that passed the range checks but no legal rows give can make, is a
    one-line error (the task is then not reported)."""
    n = len(b)
    den = 1
    for v in (*(x for row in a for x in row), *b):
        den = den * v.denominator // math.gcd(den, v.denominator)
    m = [[int(x * den) for x in row] + [int(rhs * den)] for row, rhs in zip(a, b, strict=True)]
    prev = 1
    for k in range(n):
        piv = next((r for r in range(k, n) if m[r][k] != 0), None)
        if piv is None:  # only statistics no legal rows give (e.g. an owner's Hessian)
            raise InvalidTaskParams("ml.logreg_step: the Newton matrix is singular")
        m[k], m[piv] = m[piv], m[k]
        pk = m[k]
        for i in range(k + 1, n):
            mi = m[i]
            mik = mi[k]
            for j in range(k + 1, n + 1):
                mi[j] = (mi[j] * pk[k] - mik * pk[j]) // prev
            mi[k] = 0
        prev = pk[k]
    x = [Fraction(0)] * n
    for r in range(n - 1, -1, -1):
        acc = Fraction(m[r][n]) - sum((m[r][c] * x[c] for c in range(r + 1, n)), Fraction(0))
        x[r] = acc / m[r][r]
    return x


def _grid(v: Fraction, bits: int = 40) -> Fraction:
    """v rounded to a multiple of 2**-bits (keeps the exact solve's numbers short)."""
    q = 1 << bits
    return Fraction(round(v * q), q)


def newton(params: TaskView, total: list[int]) -> list[Fraction]:
    """The next weights (column units, rounded to ``WEIGHT_DECIMALS``) from the total row:
    one Newton step of ``1/2 |beta|^2 + C sum log-loss`` on standardised features."""
    d = len(params.columns) - 1
    w = LOGREG_STEP.weights(params)
    c = parse_decimal(str(params.args.get("c", "1")))
    mu, sd = scaling(params, total)
    f = 1 << SIG_BITS
    o_g, o_h = 1 + 2 * d, 1 + 3 * d + 1
    # standardised row x~_j = a_j u_j + b_j (u_j encoded), the intercept's 1 unchanged
    a = [1 / (sd[j] * 10**col.scale) for j, col in enumerate(params.columns[:-1])] + [Fraction(1)]
    b = [-mu[j] / sd[j] for j in range(d)] + [Fraction(0)]
    g = [Fraction(total[o_g + j], f) for j in range(d + 1)]
    hu = [[Fraction(0)] * (d + 1) for _ in range(d + 1)]
    i = o_h
    for p in range(d + 1):
        for q in range(p, d + 1):
            hu[p][q] = hu[q][p] = Fraction(total[i], f)
            i += 1
    last = d  # the index of the constant 1 in u
    gs = [a[j] * g[j] + b[j] * g[last] for j in range(d)] + [g[last]]

    def hs(p: int, q: int) -> Fraction:
        if p == last and q == last:
            return hu[last][last]
        if q == last:
            return a[p] * hu[p][last] + b[p] * hu[last][last]
        if p == last:
            return hs(q, p)
        return (a[p] * a[q] * hu[p][q] + a[p] * b[q] * hu[p][last] + b[p] * a[q] * hu[last][q]
                + b[p] * b[q] * hu[last][last])  # fmt: skip

    beta = [w[j] * sd[j] for j in range(d)] + [w[d] + sum(w[j] * mu[j] for j in range(d))]
    reg = [Fraction(1)] * d + [Fraction(0)]
    grad = [_grid(reg[j] * beta[j] + c * gs[j]) for j in range(d + 1)]
    hess = [[_grid(c * hs(p, q) + (reg[p] if p == q else 0)) for q in range(d + 1)]
            for p in range(d + 1)]  # fmt: skip
    step = solve(hess, grad)
    nb = [beta[j] - step[j] for j in range(d + 1)]
    coef = [nb[j] / sd[j] for j in range(d)]
    icpt = nb[d] - sum(coef[j] * mu[j] for j in range(d))
    scale = 10**WEIGHT_DECIMALS
    return [Fraction(round(v * scale), scale) for v in (*coef, icpt)]


LOGREG_STEP = LogRegStep(
    name="ml.logreg_step",
    description="one federated Newton step of logistic regression (last column: 0/1 "
    "label): owners compute gradient and Hessian locally; the committee range-checks "
    "and adds them",
)
register(LOGREG_STEP)
