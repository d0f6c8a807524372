"""The ML family through real node processes (one shared cluster): k-means on 2-D points and
logistic regression on scikit-learn's breast-cancer data (its 10 "mean" features, so the
model fits the on-chain result), each split across 3 owners, compared with scikit-learn on
the same rows and initialisation."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnode.cli.devcluster import DevCluster

pytestmark = pytest.mark.slow


def _flat(r: dict) -> list[Fraction]:
    return [Fraction(v, 10 ** r["decimals"]) for v in r["values_scaled"]]


def _points() -> np.ndarray:
    rng = np.random.default_rng(11)
    centers = np.array([[-50.0, -40.0], [30.0, 45.0], [60.0, -30.0]])
    pts = centers[rng.integers(0, 3, 150)] + rng.normal(0, 10, (150, 2))
    return np.round(np.clip(pts, -100, 100), 2)


def _cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x = x[:, :10]
    sc = [max(0, 4 - math.floor(math.log10(x[:, j].max()))) for j in range(10)]
    x = np.column_stack([np.round(x[:, j], s) for j, s in enumerate(sc)])
    return (*train_test_split(x, y, test_size=0.2, random_state=0, stratify=y), sc)


def _split_files(tmp: Path, name: str, header: str, lines: list[str]) -> dict[str, Path]:
    cuts = [0, len(lines) // 4, len(lines) // 2 + 7, len(lines)]
    out = {}
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        out[f"owner-{i}"] = tmp / f"{name}-{i}.csv"
        out[f"owner-{i}"].write_text("\n".join([header, *lines[a:b]]) + "\n")
    return out


def test_ml_family_end_to_end(tmp_path: Path) -> None:
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pts = _points()
    init = ["-40", "-40", "40", "40", "40", "-40"]
    kfiles = _split_files(tmp_path, "pts", "x,y", [f"{a:.2f},{b:.2f}" for a, b in pts])
    xtr, xte, ytr, yte, sc = _cancer()
    names = [f"f{j}" for j in range(10)]
    lfiles = _split_files(
        tmp_path, "cancer", ",".join([*names, "label"]),
        [",".join([*(f"{v:.{s}f}" for v, s in zip(r, sc, strict=True)), str(int(t))])
         for r, t in zip(xtr, ytr, strict=True)],
    )  # fmt: skip
    lcols = [f"{n}:fixed:{s}:0:{math.ceil(xtr[:, j].max() * 2)}" if s else
             f"{n}:int:0:{math.ceil(xtr[:, j].max() * 2)}"
             for j, (n, s) in enumerate(zip(names, sc, strict=True))]  # fmt: skip
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        for i in range(1, 4):
            cluster.start_node(f"node-{i}", capacity=10, extra_args=["--max-tasks", "10"])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in kfiles}
        col = lambda *cs: [x for c in cs for x in ("--column", c)]  # noqa: E731
        slow = ["--input-timeout", "900", "--seat-timeout", "300", "--report-timeout", "2400"]
        km = cluster.post_mpc(
            requester, list(owners.values()), "ml.kmeans",
            extra=[*col("x:fixed:2:-100:100", "y:fixed:2:-100:100"), "--k", "3",
                   "--iterations", "10", "--init", ",".join(init), *slow],
        )  # fmt: skip
        lr = cluster.post_mpc(
            requester, list(owners.values()), "ml.logreg",
            extra=[*col(*lcols, "label:int:0:1"), "--c", "1", "--iterations", "8", *slow],
        )  # fmt: skip
        cluster.contribute_all(km, owners, kfiles)
        cluster.contribute_all(lr, owners, lfiles)
        png = tmp_path / "clusters.png"
        rk = cluster.dnode(requester, "task", "result", str(km), "--wait", "1800", "--plot",
                           str(png))  # fmt: skip
        rl = cluster.dnode(requester, "task", "result", str(lr), "--wait", "2400")

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the centroids, drawn

    # k-means: inertia within 2% and sizes within 1% of scikit-learn with the same init
    assert rk["shape"] == [3, 3] and rk["labels"][1] == ["x", "y", "size"]
    got = np.array([float(v) for v in _flat(rk)]).reshape(3, 3)
    cents, sizes = got[:, :2], got[:, 2]
    ref = KMeans(3, init=np.array(init, float).reshape(3, 2), n_init=1, max_iter=10, tol=0,
                 algorithm="lloyd").fit(pts)  # fmt: skip
    inertia = float(((pts[:, None] - cents[None]) ** 2).sum(axis=2).min(axis=1).sum())
    assert inertia == pytest.approx(ref.inertia_, rel=0.02)
    want = np.bincount(ref.labels_, minlength=3)
    for c, s in zip(cents, sizes, strict=True):
        j = int(np.argmin(((ref.cluster_centers_ - c) ** 2).sum(axis=1)))
        assert abs(s - want[j]) <= max(1, 0.01 * len(pts))

    # logistic regression: test accuracy within 1 percentage point of scikit-learn (same C)
    assert rl["labels"][0] == [*names, "intercept"]
    model = np.array([float(v) for v in _flat(rl)])
    acc = float(((xte @ model[:-1] + model[-1] > 0) == yte).mean())
    ref_acc = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(xtr, ytr).score(
        xte, yte)  # fmt: skip
    assert abs(acc - ref_acc) <= 0.01, (acc, ref_acc)
