"""ml.kmeans in real MPyC party processes (node.mpc.party), jobs built from the spec as the
node builds them, checked against scikit-learn's KMeans with the same initial centroids."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import trio

from dnode.node.errors import CheatingDetectedError
from dnode.node.mpc import influence
from dnode.node.mpc.executor import MpcResult
from dnode.node.mpc.influence import table_witness
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from tests.node.test_malicious import ADDRS, _jobs, _run

X = Column("x", "fixed", 2, Fraction(-100), Fraction(100))
Y = Column("y", "fixed", 2, Fraction(-100), Fraction(100))


def _params(**args: object) -> TaskParams:
    return TaskParams("ml.kmeans", ADDRS, columns=(X, Y), args=args, max_rows=1000)


def _blobs(n: int = 240, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[-50.0, -40.0], [30.0, 45.0], [60.0, -30.0], [-20.0, 60.0]])
    pts = centers[rng.integers(0, 4, n)] + rng.normal(0, 9, (n, 2))
    return np.round(np.clip(pts, -100, 100), 2)


def _split(pts: np.ndarray) -> list[list[int]]:
    """Three owners' rows (unequal), encoded as the owner CLI does (x 10**scale)."""
    cuts = [0, len(pts) // 5, len(pts) // 2, len(pts)]
    spans = zip(cuts, cuts[1:], strict=False)
    return [[int(round(v * 100)) for v in pts[a:b].reshape(-1)] for a, b in spans]


def _forged_witness(values: list[int], w: influence.TableWitness) -> list[int]:
    """The witness bits a cheating owner computes for its real (out-of-range) values: the
    honest helper refuses them, the bits themselves fit whenever its sums do."""
    rows = len(values) // w.width
    out: list[int] = []
    for q, ell in zip(influence._table_quantities(values, w), influence.table_layout(rows, w),
                      strict=True):  # fmt: skip
        assert 0 <= q < 1 << ell
        out += [(q >> j) & 1 for j in range(ell)]
    return out


def _with_witness(params: TaskParams, owners: list[list[int]]) -> list[list[int]]:
    w = influence.task_witness(params)
    assert w is not None
    return [[*o, *(table_witness(o, w) if max(map(abs, o), default=0) <= 10000
                   else _forged_witness(o, w))] for o in owners]  # fmt: skip


def _go(params, owners, checks=True, evil=None, mode="", offset=0, witness=True):
    vecs = _with_witness(params, owners) if witness else owners
    jobs = _jobs("ml.kmeans", vecs, checks=checks, witness=witness, tid=41, params=params)
    return trio.run(_run, jobs, evil, mode, offset, 600)


def _centroids(params: TaskParams, r: MpcResult) -> tuple[np.ndarray, list[int]]:
    out = params.spec.finish(params, r.revealed, r.rows)
    vals = np.array([float(v) for v in out.values]).reshape(out.shape)
    return vals[:, :2], [int(v) for v in vals[:, 2]]


def _inertia(pts: np.ndarray, cents: np.ndarray) -> float:
    d = ((pts[:, None, :] - cents[None, :, :]) ** 2).sum(axis=2)
    return float(d.min(axis=1).sum())


@pytest.mark.parametrize("checks", [True, False])
def test_kmeans_matches_scikit_learn(checks):
    from sklearn.cluster import KMeans

    pts = _blobs()
    params = _params(k=4, iterations=10, seed=3)
    init = np.array([[float(v) for v in row] for row in params.spec.initial(params)])
    res = _go(params, _split(pts), checks=checks)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert len({str(r.revealed) for r in res}) == 1
    cents, sizes = _centroids(params, res[0])
    ref = KMeans(4, init=init, n_init=1, max_iter=10, tol=0, algorithm="lloyd").fit(pts)
    assert _inertia(pts, cents) == pytest.approx(ref.inertia_, rel=0.02)
    want = np.bincount(ref.labels_, minlength=4)
    order = [int(np.argmin(((ref.cluster_centers_ - c) ** 2).sum(axis=1))) for c in cents]
    assert sorted(order) == [0, 1, 2, 3]
    for i, j in enumerate(order):
        assert abs(sizes[i] - want[j]) <= max(1, 0.01 * len(pts))
    assert sum(sizes) == len(pts)


def test_sampled_kmeans_matches_scikit_learn_on_all_rows():
    """--sample: the iterations but the last run on a public sample of 80 of the 400 rows, the
    last on every row; inertia and sizes still within 2% / 1% of scikit-learn's full Lloyd."""
    from sklearn.cluster import KMeans

    from dnode.node.engines.mpc.kernels.kmeans import sample_rows

    pts = _blobs(400, seed=11)
    params = _params(k=4, iterations=6, seed=3, sample=80)
    init = np.array([[float(v) for v in row] for row in params.spec.initial(params)])
    res = _go(params, _split(pts))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert len({str(r.revealed) for r in res}) == 1
    cents, sizes = _centroids(params, res[0])
    ref = KMeans(4, init=init, n_init=1, max_iter=10, tol=0, algorithm="lloyd").fit(pts)
    assert _inertia(pts, cents) == pytest.approx(ref.inertia_, rel=0.02)
    assert sum(sizes) == len(pts)  # the last iteration counted every row, not the sample
    want = np.bincount(ref.labels_, minlength=4)
    order = [int(np.argmin(((ref.cluster_centers_ - c) ** 2).sum(axis=1))) for c in cents]
    assert sorted(order) == [0, 1, 2, 3]
    for i, j in enumerate(order):
        assert abs(sizes[i] - want[j]) <= max(1, 0.01 * len(pts))
    # the sample is public and the same at every party: a function of (seed, n, size)
    idx = sample_rows(400, 80, 3)
    assert idx == sample_rows(400, 80, 3) and len(set(idx)) == 80 and max(idx) < 400
    assert sample_rows(400, 0, 3) is None and sample_rows(400, 400, 3) is None


def test_out_of_range_points_move_no_centroid_beyond_the_declared_range():
    """Owner 1 shares 10 points at (190, 190) and 10 at (-190, -190), almost twice the declared
    bound: its column sums stay inside what its influence witness allows (they cancel), so only
    the clamp stops it.  Without the clamp its points pull a centroid to about (-136, -136)
    (beyond the declared [-100, 100]); with it the result is that of the clamped points."""
    pts = _blobs(40, seed=1)
    params = _params(k=2, iterations=5, init=["-50", "-50", "50", "50"])
    owners = _split(pts)
    evil = [19000, 19000, -19000, -19000] * 10
    res = _go(params, [owners[0], evil, owners[2]])
    assert all(isinstance(r, MpcResult) for r in res), res
    cents, sizes = _centroids(params, res[0])
    assert np.abs(cents).max() <= 100, cents
    clamped = [10000, 10000, -10000, -10000] * 10
    assert res[0].revealed == _go(params, [owners[0], clamped, owners[2]])[0].revealed


def test_deviating_party_is_detected():
    pts = _blobs(40, seed=2)
    params = _params(k=2, iterations=2, seed=1)
    res = _go(params, _split(pts), evil=2, mode="reshare", offset=600)
    honest = [r for i, r in enumerate(res) if i != 2]
    assert all(isinstance(r, CheatingDetectedError) for r in honest), res


def test_bad_arguments_are_one_line_errors():
    def check(**kw: object) -> None:
        p = TaskParams("ml.kmeans", ADDRS, **kw)  # type: ignore[arg-type]
        p.spec.validate(p)

    with pytest.raises(InvalidTaskParams, match="k=5 clusters but the task admits at most 4"):
        check(columns=(X, Y), args={"k": 5}, max_rows=4)
    cat = Column("c", "cat", domain=("a", "b"))
    with pytest.raises(InvalidTaskParams, match="cannot take column 'c' of type cat"):
        check(columns=(X, cat), args={"k": 2})
    with pytest.raises(InvalidTaskParams, match="outside column 'x'"):
        check(columns=(X, Y), args={"k": 2, "init": ["0", "0", "500", "0"]})
    with pytest.raises(InvalidTaskParams, match="init needs k x columns = 4 values, got 3"):
        check(columns=(X, Y), args={"k": 2, "init": ["0", "0", "5"]})
    with pytest.raises(InvalidTaskParams, match="sample must be 0 .all rows. or at least k=3"):
        check(columns=(X, Y), args={"k": 3, "sample": 2})
    with pytest.raises(InvalidTaskParams, match="sample must be 0"):
        check(columns=(X, Y), args={"k": 3, "sample": -1})
    with pytest.raises(InvalidTaskParams, match="at most 16 fit"):
        check(columns=(X, Y), args={"k": 6})


def test_k_larger_than_the_rows_and_an_empty_owner_are_refused():
    params = _params(k=4, iterations=1, seed=1)
    pts = _blobs(9, seed=4)
    owners = _split(pts)
    res = _go(params, [owners[0], [], owners[2]])
    assert all(isinstance(r, MpcResult) for r in res), res
    with pytest.raises(InvalidTaskParams, match=r"owner\(s\) \[1\] contributed no rows"):
        params.spec.finish(params, res[0].revealed, res[0].rows)
    res = _go(params, [owners[0][:2], owners[1][:2], owners[2][:2]])
    with pytest.raises(InvalidTaskParams, match="k=4 clusters but only 3 row"):
        params.spec.finish(params, res[0].revealed, res[0].rows)
