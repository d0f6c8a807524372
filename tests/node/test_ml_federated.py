"""The federated steps ``ml.kmeans_step`` and ``ml.logreg_step``: the owners' statistics and
the public step against scikit-learn / numpy (no MPC), chains of steps against scikit-learn's
quality bars (issue 17), and the kernel in real MPyC party processes with checks -- including
the owner who shares statistics no legal rows give (its influence checks abort the session,
naming it)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import trio

from dnode.node.errors import CheatingDetectedError
from dnode.node.mpc import influence
from dnode.node.mpc.executor import MpcResult
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from dnode.scheduler.programs.ml.kmeans_step import assign
from dnode.scheduler.programs.tables import Table
from tests.node.test_malicious import ADDRS, _jobs, _run

X = Column("x", "fixed", 2, Fraction(-100), Fraction(100))
Y = Column("y", "fixed", 2, Fraction(-100), Fraction(100))
LABEL = Column("label", "int", 0, Fraction(0), Fraction(1))


def _blobs(n: int = 300, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[-50.0, -40.0], [30.0, 45.0], [60.0, -30.0], [-20.0, 60.0]])
    pts = centers[rng.integers(0, 4, n)] + rng.normal(0, 9, (n, 2))
    return np.round(np.clip(pts, -100, 100), 2)


def _tables(cols: tuple[Column, ...], enc: np.ndarray) -> list[Table]:
    """Three owners' rows (unequal), as the owner CLI parses them."""
    n = len(enc)
    cuts = [0, n // 5, n // 2, n]
    return [Table(cols, tuple(tuple(int(v) for v in enc[a:b, j]) for j in range(len(cols))))
            for a, b in zip(cuts, cuts[1:], strict=False)]  # fmt: skip


def _km(cents: list[str], max_rows: int = 1000) -> TaskParams:
    return TaskParams("ml.kmeans_step", ADDRS, columns=(X, Y), args={"centroids": cents},
                      max_rows=max_rows)  # fmt: skip


def _plain_step(params: TaskParams, tables: list[Table]) -> tuple[Any, list[list[int]]]:
    """One step without MPC: every owner's row, the total, the spec's output."""
    rows = [params.spec.encode_owner(params, t) for t in tables]
    total = [sum(v) for v in zip(*rows, strict=True)]
    return params.spec.finish(params, {"sums": total}, len(rows)), rows


def _next(values: Any) -> list[str]:
    from dnode.scheduler.programs.schema import _dec

    return [str(_dec(Fraction(v))) for v in values]


# ---------------------------------------------------------------- k-means step


def test_kmeans_step_is_one_scikit_learn_lloyd_step():
    from sklearn.cluster import KMeans

    pts = _blobs()
    init = ["-40", "-40", "40", "40", "40", "-40", "0", "70"]
    params = _km(init)
    out, rows = _plain_step(params, _tables((X, Y), np.rint(pts * 100).astype(np.int64)))
    assert [len(r) for r in rows] == [12, 12, 12]  # k (d + 1) integers per owner, not per row
    got = np.array([float(v) for v in out.values]).reshape(4, 3)
    start = np.array(init, float).reshape(4, 2)
    ref = KMeans(4, init=start, n_init=1, max_iter=1, algorithm="lloyd").fit(pts)
    labels = np.argmin(((pts[:, None] - start[None]) ** 2).sum(axis=2), axis=1)
    assert np.abs(got[:, :2] - ref.cluster_centers_).max() <= 0.0005  # 3 decimals, rounded
    assert [int(v) for v in got[:, 2]] == np.bincount(labels, minlength=4).tolist()


def test_assignment_is_exact_and_ties_go_to_the_lowest_centroid():
    pts = np.array([[0, 0], [5, 0], [10, 0]], dtype=object)  # common scale
    cents = [[0, 0], [100, 0]]  # centroid scale (x 10): 0.0 and 10.0; (5, 0) is a tie
    assert assign(pts, cents).tolist() == [0, 0, 1]


def test_kmeans_chain_meets_the_quality_bars():
    """Ten steps (each fed the previous output, as the driver does) against scikit-learn's
    Lloyd from the same centroids: inertia within 2%, sizes within 1% (issue 17)."""
    from sklearn.cluster import KMeans

    pts = _blobs(600, seed=3)
    enc = np.rint(pts * 100).astype(np.int64)
    cents = ["-40", "-40", "40", "40", "40", "-40", "0", "70"]
    tables = _tables((X, Y), enc)
    for _ in range(10):
        out, _rows = _plain_step(_km(cents), tables)
        vals = _next(out.values)
        cents = [vals[i * 3 + j] for i in range(4) for j in range(2)]
    got = np.array([float(v) for v in out.values]).reshape(4, 3)
    start = np.array(["-40", "-40", "40", "40", "40", "-40", "0", "70"], float).reshape(4, 2)
    ref = KMeans(4, init=start, n_init=1, max_iter=10, tol=0, algorithm="lloyd").fit(pts)
    inertia = float(((pts[:, None] - got[None, :, :2]) ** 2).sum(axis=2).min(axis=1).sum())
    assert inertia == pytest.approx(ref.inertia_, rel=0.02)
    want = np.bincount(ref.labels_, minlength=4)
    for c, s in zip(got[:, :2], got[:, 2], strict=True):
        j = int(np.argmin(((ref.cluster_centers_ - c) ** 2).sum(axis=1)))
        assert abs(s - want[j]) <= max(1, 0.01 * len(pts))


def test_kmeans_step_bad_arguments_are_one_line_errors():
    with pytest.raises(InvalidTaskParams, match="centroids needs k x 2 values"):
        _km(["1", "2", "3"])
    with pytest.raises(InvalidTaskParams, match="outside column 'x'"):
        _km(["500", "0"])
    with pytest.raises(InvalidTaskParams, match="more than 3 decimals"):
        _km(["1.2345", "0"])
    with pytest.raises(InvalidTaskParams, match="at most 16 fit"):
        _km(["0", "0"] * 6)
    with pytest.raises(InvalidTaskParams, match="argument 'centroids' is required"):
        TaskParams("ml.kmeans_step", ADDRS, columns=(X, Y))


# ---------------------------------------------------------------- logistic regression step


def _cancer() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x = x[:, :10]
    sc = [max(0, 4 - math.floor(math.log10(x[:, j].max()))) for j in range(10)]
    x = np.column_stack([np.round(x[:, j], s) for j, s in enumerate(sc)])
    return (*train_test_split(x, y, test_size=0.2, random_state=0, stratify=y), np.array(sc))


def _cancer_cols(xtr: np.ndarray, sc: np.ndarray) -> tuple[Column, ...]:
    cols = tuple(Column(f"f{j}", "fixed" if s else "int", int(s), Fraction(0),
                        Fraction(math.ceil(xtr[:, j].max() * 2)))
                 for j, s in enumerate(sc))  # fmt: skip
    return (*cols, LABEL)


def _enc(x: np.ndarray, y: np.ndarray, sc: np.ndarray) -> np.ndarray:
    return np.column_stack([np.rint(x * 10.0**sc).astype(np.int64), y])


def _lr(cols: tuple[Column, ...], weights: list[str] | None, n: int, c: str = "1") -> TaskParams:
    args: dict[str, Any] = {"c": c, **({"weights": weights} if weights else {})}
    return TaskParams("ml.logreg_step", ADDRS, columns=cols, args=args, max_rows=n)


def test_logreg_step_is_one_newton_step_of_the_scikit_learn_objective():
    """From nonzero weights: the spec's step equals numpy's Newton step of
    1/2 |beta|^2 + C sum log-loss on the standardised features (intercept free)."""
    rng = np.random.default_rng(5)
    d, n, c = 5, 400, 0.5
    xtr = np.round(rng.normal(1, 2, (n, d)), 2)
    ytr = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-(xtr @ rng.normal(0, 1, d))))).astype(int)
    cols = (*(Column(f"f{j}", "fixed", 2, Fraction(-20), Fraction(20)) for j in range(d)), LABEL)
    w0 = [f"{v:.6f}" for v in rng.normal(0, 0.3, d + 1)]
    params = _lr(cols, w0, n, c=str(c))
    out, rows = _plain_step(params, _tables(cols, _enc(xtr, ytr, np.full(d, 2))))
    assert [len(r) for r in rows] == [params.spec.width(params)] * 3 == [1 + 10 + 6 + 21] * 3
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
    xs = np.column_stack([(xtr - mu) / sd, np.ones(n)])
    w = np.array([float(v) for v in w0])
    beta = np.r_[w[:d] * sd, w[d] + w[:d] @ mu]
    p = 1 / (1 + np.exp(-xs @ beta))
    reg = np.r_[np.ones(d), 0.0]
    grad = reg * beta + c * xs.T @ (p - ytr)
    hess = np.diag(reg) + c * (xs * (p * (1 - p))[:, None]).T @ xs
    nb = beta - np.linalg.solve(hess, grad)
    want = np.r_[nb[:d] / sd, nb[d] - (nb[:d] / sd) @ mu]
    got = np.array([float(v) for v in out.values])
    # the sigmoid enters as integers at 2**-20
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6), (got, want)


def test_logreg_chain_accuracy_within_one_point_of_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte, ytr, yte, sc = _cancer()
    cols = _cancer_cols(xtr, sc)
    tables = _tables(cols, _enc(xtr, ytr, sc))
    weights: list[str] | None = None
    for _ in range(8):
        out, _rows = _plain_step(_lr(cols, weights, len(ytr)), tables)
        weights = _next(out.values)
    model = np.array([float(v) for v in out.values])
    acc = float(((xte @ model[:-1] + model[-1] > 0) == yte).mean())
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(xtr, ytr)
    assert abs(acc - ref.score(xte, yte)) <= 0.01, (acc, ref.score(xte, yte))


def test_logreg_step_bad_arguments_are_one_line_errors():
    cols = (X, LABEL)
    with pytest.raises(InvalidTaskParams, match="weights needs 1 coefficients and an intercept"):
        _lr(cols, ["1", "2", "3"], 100)
    with pytest.raises(InvalidTaskParams, match="must be declared int with range"):
        _lr((X, Y), None, 100)
    with pytest.raises(InvalidTaskParams, match="c .scikit-learn C. must be > 0"):
        _lr(cols, None, 100, c="0")
    wide = tuple(Column(f"f{j}", "fixed", 2, Fraction(-10), Fraction(10)) for j in range(54))
    with pytest.raises(InvalidTaskParams, match="ask for a private result"):
        _lr((*wide, LABEL), None, 7000)
    p = TaskParams(
        "ml.logreg_step", ADDRS, columns=(*wide, LABEL), max_rows=7000, result_key="ab" * 32
    )  # 54 features: the step shares statistics, not rows
    assert p.spec.width(p) == 1 + 108 + 55 + 55 * 56 // 2


# ---------------------------------------------------------------- in MPyC parties


def _witnessed(params: TaskParams, rows: list[list[int]]) -> list[list[int]]:
    """Each owner's row and its witness bits; a row no legal data gives gets the bits a
    cheating owner would send (each check's quantity modulo 2**bits: the honest helper
    refuses to compute them)."""
    w = influence.task_witness(params)
    assert w is not None
    out = []
    for r in rows:
        qs = influence._table_quantities(r, w)
        bits = []
        for q, ell in zip(qs, influence.table_layout(1, w), strict=True):
            bits += [((q % (1 << ell)) >> j) & 1 for j in range(ell)]
        out.append([*r, *bits])
    return out


def _mpc(params: TaskParams, rows: list[list[int]], checks: bool = True) -> list[Any]:
    jobs = _jobs(params.program, _witnessed(params, rows), checks=checks, tid=57, params=params)
    return trio.run(_run, jobs, None, "", 0, 300)


def test_kmeans_step_in_parties_equals_the_plaintext_step():
    pts = _blobs(90, seed=5)
    params = _km(["-40", "-40", "40", "40", "40", "-40"])
    want, rows = _plain_step(params, _tables((X, Y), np.rint(pts * 100).astype(np.int64)))
    res = _mpc(params, rows)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert len({str(r.revealed) for r in res}) == 1
    assert params.spec.finish(params, res[0].revealed, res[0].rows) == want


def test_owner_with_out_of_range_cluster_sums_is_rejected():
    """Owner 1 claims one point at x = 500 in a [-100, 100] column (a sum of 50000 for a count
    of 1): within the static per-column bound of max_rows points (10**7), so only the checks
    ``n hi - S >= 0`` catch it.  Without them (``influence_checks`` emptied, the witness then
    proves the column bounds only) it pulls a centroid to x = 251 -- outside the declared
    range; with them every honest seat aborts naming owner 1 (the task is refunded)."""
    pts = _blobs(60, seed=8)
    params = _km(["-40", "-40", "40", "40"])
    _out, rows = _plain_step(params, _tables((X, Y), np.rint(pts * 100).astype(np.int64)))
    evil = [0, 0, 0, 50000, 0, 1]  # cluster 1: sum x = 500.00, sum y = 0, one point
    res = _mpc(params, [rows[0], evil, rows[2]])
    assert all(isinstance(r, CheatingDetectedError) for r in res), res
    assert all(r.owner == 1 for r in res), res


def test_without_the_checks_the_same_row_moves_a_centroid_out_of_range(monkeypatch):
    """The attack of the test above is real: with the column bounds only (the witness before
    ``influence_checks`` existed), a row claiming one point at x = 50,000 (still within the
    static bound of max_rows points) passes and drags a centroid out of the declared range."""
    pts = _blobs(60, seed=8)
    params = _km(["-40", "-40", "40", "40"])
    _out, rows = _plain_step(params, _tables((X, Y), np.rint(pts * 100).astype(np.int64)))
    monkeypatch.setattr(type(params.spec), "influence_checks", lambda self, p: [])
    res = _mpc(params, [rows[0], [0, 0, 0, 5_000_000, 0, 1], rows[2]])
    assert all(isinstance(r, MpcResult) for r in res), res
    out = params.spec.finish(params, res[0].revealed, res[0].rows)
    assert float(out.values[3]) > 100  # centroid 1 beyond the declared [-100, 100]


def test_logreg_step_in_parties_and_an_inflated_gradient_is_rejected():
    """A 2-feature step in parties equals the plaintext step; an owner that multiplies its
    gradient by 1000 (beyond n 2**F B for its own count n) is named by every seat."""
    rng = np.random.default_rng(2)
    x = np.round(rng.uniform(-1, 1, (60, 2)), 2)
    y = (x @ [2.0, -1.0] + rng.normal(0, 0.5, 60) > 0).astype(np.int64)
    cols = (Column("a", "fixed", 2, Fraction(-1), Fraction(1)),
            Column("b", "fixed", 2, Fraction(-1), Fraction(1)), LABEL)  # fmt: skip
    params = _lr(cols, ["0.5", "-0.25", "0.1"], 1000)
    want, rows = _plain_step(params, _tables(cols, np.column_stack([np.rint(x * 100), y])))
    res = _mpc(params, rows)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert params.spec.finish(params, res[0].revealed, res[0].rows) == want
    evil = list(rows[1])
    g0 = 1 + 2 * 2  # the gradient's first entry
    evil[g0] *= 1000
    res = _mpc(params, [rows[0], evil, rows[2]])
    assert all(isinstance(r, CheatingDetectedError) for r in res), res


def test_seeded_initial_centroids_are_those_of_ml_kmeans():
    """A driver's first step without --init starts where ``ml.kmeans --seed`` starts."""
    from dnode.scheduler.programs.ml.kmeans_step import KMeansStep

    ref = TaskParams("ml.kmeans", ADDRS, columns=(X, Y), args={"k": 3, "seed": 9})
    assert KMeansStep.initial((X, Y), 3, 9) == ref.spec.initial(ref)  # type: ignore[attr-defined]
