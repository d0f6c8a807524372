"""DP k-means (DPLloyd) through real MPyC parties (three processes, malicious-minority checks
on): every iteration's cluster sums and sizes are opened only with discrete Laplace noise
sampled inside the MPC; the noisy centroids land near scikit-learn's exact Lloyd from the
same start, and are not the exact centroids."""

from __future__ import annotations

import numpy as np
import pytest

from dnode.node.mpc.executor import MpcResult
from tests.node.test_ml_kmeans import _blobs, _centroids, _go, _params, _split


def test_dp_kmeans_is_near_exact_lloyd_and_opens_no_exact_sums() -> None:
    from sklearn.cluster import KMeans

    pts = _blobs(120, seed=7)
    init = "-45,-35,25,40,55,-25,-15,55"  # near the four blobs: Lloyd converges in 3
    params = _params(k=4, iterations=3, init=init, epsilon="30")
    plan = params.spec.dp_plan(params)
    assert plan is not None and len(plan.noises) == 6  # sums and sizes per iteration
    sums_scale = plan.noise("sums-0").scale  # encoded at 2 decimals
    res = _go(params, _split(pts))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert len({str(r.revealed) for r in res}) == 1
    cents, sizes = _centroids(params, res[0])
    start = np.array([float(v) for v in init.split(",")]).reshape(4, 2)
    ref = KMeans(4, init=start, n_init=1, max_iter=3, tol=0, algorithm="lloyd").fit(pts)
    want = np.bincount(ref.labels_, minlength=4)
    # per cluster of >= 20 points the centroid error is about |Z| / (100 size) per coordinate
    err = 20 * sums_scale / 100 / min(want)
    assert np.abs(cents - ref.cluster_centers_).max() < err + 0.01, (cents, ref.cluster_centers_)
    assert np.abs(np.array(sizes) - want).max() <= 20 * plan.noise("sizes-0").scale + 1
    # the exact MPC run opens each converged centroid as the cluster mean rounded to the
    # centroid grid (3 decimals here, tests/node/test_ml_kmeans.py): not what was opened
    assert np.abs(cents - np.round(ref.cluster_centers_, 3)).max() > 0.0005, cents


def test_dp_kmeans_calibration() -> None:
    """Sums: 2 x sum_j max|bound_j| at the common scale (a row leaves one cluster and joins
    another); sizes 2; the budget split over 2 x iterations releases (OpenDP's scales)."""
    params = _params(k=2, iterations=4, epsilon="2")
    plan = params.spec.dp_plan(params)
    assert plan is not None and len(plan.noises) == 8
    assert plan.noise("sums-3").release.sensitivity == 2 * (10000 + 10000)
    assert plan.noise("sums-3").release.size == 4
    assert plan.noise("sizes-0").release.sensitivity == 2
    assert plan.epsilon == pytest.approx(2.0)
    assert plan.noise("sizes-0").scale == pytest.approx(2 / (2 / 8), rel=1e-6)
    assert plan.noise("sums-0").scale == pytest.approx(40000 / (2 / 8), rel=1e-6)
    assert params.spec.kernel_args(params)["dp"]["releases"][0]["name"] == "sums-0"
    assert params.bit_length >= _params(k=2, iterations=4).bit_length
