"""DP order statistics (mpc.median / mpc.quantiles / mpc.min / mpc.max with --epsilon)
through three real MPyC parties: only a noisy histogram over the declared range is opened
(noise sampled inside the MPC), the quantiles are read off its noisy CDF; they land within the
expected error of numpy's exact quantiles, and the exact histogram is not what is opened."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import trio

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from tests.node.test_malicious import ADDRS, _jobs
from tests.node.test_malicious import _run as run_parties

AGE = Column("age", "int", 0, Fraction(0), Fraction(99))


def _params(program: str, **args: object) -> TaskParams:
    return TaskParams(program, ADDRS[:2], columns=(AGE,), args=args, max_rows=1000)


def test_noisy_quantiles_are_near_numpy_and_open_only_a_noisy_histogram() -> None:
    rng = np.random.default_rng(18)
    ages = np.clip(np.round(rng.normal(45, 15, 200)), 0, 99).astype(int)
    params = _params("mpc.quantiles", q="0.25,0.5,0.75", epsilon="2", dp_bins="50")
    plan = params.spec.dp_plan(params)
    assert plan is not None
    (z,) = plan.noises
    assert (z.release.name, z.release.size, z.release.sensitivity) == ("bins", 50, 2)
    vals = [[int(v) for v in ages[:80]], [int(v) for v in ages[80:]]]
    res = trio.run(lambda: run_parties(_jobs("mpc.quantiles", vals, witness=False,
                                             checks=False, params=params)))  # fmt: skip
    revealed = res[0].revealed  # type: ignore[attr-defined]
    assert set(revealed) == {"bins"}  # no order statistic, no exact count is opened
    exact = np.bincount(ages // 2, minlength=50)  # 2-wide bins
    got = np.array(revealed["bins"])
    # every bin count within 20 noise scales (P(fail) < 50 e^-20); not all exact (P ~ 0.5^50)
    assert np.abs(got - exact).max() < 20 * z.scale and not np.array_equal(got, exact)
    out = params.spec.finish(params, revealed, 200)
    want = np.quantile(ages, [0.25, 0.5, 0.75])
    # error: one bin width (2) plus the CDF noise, sd sqrt(2 x 50) x scale = 10 rows; 200 rows
    # put 3-5 rows per unit of age between the quartiles: 40 rows (4 sd) is ~10 units
    for g, w in zip(out.values, want, strict=True):
        assert abs(float(g) - w) <= 12, (out.values, want)


def test_dp_order_statistic_calibration_and_post_processing() -> None:
    """The noisy histogram: sensitivity 2, scale 2 / epsilon (OpenDP); the quantiles are read
    off the CDF (exact counts give numpy's quantile up to the bin width)."""
    p = _params("mpc.median", epsilon="0.5", dp_bins="10")
    plan = p.spec.dp_plan(p)
    assert plan is not None and plan.noises[0].scale == pytest.approx(4.0, rel=1e-6)
    assert p.spec.dp_edges(p) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    ka = p.spec.kernel_args(p)
    assert ka["needs"] == ["below"] and ka["below"][-1] == 100 and "dp" in ka
    # exact counts: 5 rows in [10, 20), 5 in [40, 50): the median (rank 5.5) is in bin 4
    (m,) = p.spec.dp_quantiles(p, [0, 5, 0, 0, 5, 0, 0, 0, 0, 0], 10)
    assert 40 <= m < 50
    mx = _params("mpc.max", epsilon="1")
    assert mx.spec.guarantee(mx) is not None and mx.spec.private_refusal(mx) is None
    with pytest.raises(InvalidTaskParams, match="takes one column"):
        TaskParams("mpc.median", ADDRS[:2], columns=(AGE, Column("b", "int", 0, Fraction(0),
                   Fraction(9))), args={"epsilon": "1"})  # fmt: skip
    with pytest.raises(InvalidTaskParams, match="--dp-bins needs --epsilon"):
        _params("mpc.median", dp_bins="10")
    exact = _params("mpc.median")
    assert "dp" not in exact.spec.kernel_args(exact) and "order" in exact.spec.needs
