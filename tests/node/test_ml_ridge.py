"""ml.ridge in real MPyC party processes against scikit-learn's Ridge on the diabetes data set
(442 x 10, bundled with scikit-learn) split across 3 owners."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import trio

from dnode.node.mpc import influence
from dnode.node.mpc.executor import MpcResult
from dnode.node.mpc.influence import table_witness
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from tests.node.test_malicious import ADDRS, _jobs, _run

SCALE = 6


def _data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return np.round(x, SCALE), y.astype(int)


def _params(alpha: str, d: int = 10) -> TaskParams:
    cols = [Column(f"f{j}", "fixed", SCALE, Fraction(-1), Fraction(1)) for j in range(d)]
    cols.append(Column("y", "int", 0, Fraction(0), Fraction(400)))
    return TaskParams("ml.ridge", ADDRS, columns=tuple(cols), args={"alpha": alpha},
                      max_rows=1000)  # fmt: skip


def _owners(x: np.ndarray, y: np.ndarray) -> list[list[int]]:
    rows = [[int(round(v * 10**SCALE)) for v in r] + [int(t)] for r, t in zip(x, y, strict=True)]
    cuts = [0, 100, 290, len(rows)]
    return [[v for r in rows[a:b] for v in r] for a, b in zip(cuts, cuts[1:], strict=False)]


@pytest.mark.parametrize("alpha", ["0.5", "0"])
def test_ridge_matches_scikit_learn(alpha):
    from sklearn.linear_model import LinearRegression, Ridge

    x, y = _data()
    params = _params(alpha)
    w = influence.task_witness(params)
    assert w is not None
    vecs = [[*o, *table_witness(o, w)] for o in _owners(x, y)]
    res = trio.run(_run, _jobs("ml.ridge", vecs, checks=True, tid=51, params=params))
    assert all(isinstance(r, MpcResult) for r in res), res
    out = params.spec.finish(params, res[0].revealed, res[0].rows)
    got = np.array([float(v) for v in out.values])
    ref = Ridge(alpha=float(alpha)).fit(x, y) if alpha != "0" else LinearRegression().fit(x, y)
    want = np.array([*ref.coef_, ref.intercept_])
    assert got == pytest.approx(want, rel=1e-3)
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()  # exact up to float rounding
    assert out.labels == ((*(f"f{j}" for j in range(10)), "intercept"),)


def test_ridge_refuses_negative_alpha_and_a_singular_fit():
    with pytest.raises(InvalidTaskParams, match="alpha must be >= 0"):
        _params("-1")
    p = _params("0", d=1)  # a constant feature (x = 1 on 5 rows): X^T X centred is 0
    one = 10**SCALE
    r = {"sum": [5 * one, 10], "gram": [5 * one * one, 10 * one, 10 * one, 20]}
    with pytest.raises(InvalidTaskParams, match="singular"):
        p.spec.finish(p, r, 5)
    assert p.spec.finish(_params("1", d=1), r, 5).values == (0, 2)  # alpha > 0: solvable
