"""Federated k-means through real node processes: ``dnode ml kmeans --federated`` as the
requester posts one ``ml.kmeans_step`` task per iteration, each from the previous task's
attested centroids; three owners' agents (``dnode owner start``) contribute to every step on
their own (no ``task contribute`` anywhere). Two steps, checked against scikit-learn's Lloyd
from the same centroids (exact sizes; centroids to the rounding of their 3 decimals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnode.cli.devcluster import DevCluster

pytestmark = pytest.mark.slow

INIT = ["-40", "-40", "40", "40", "40", "-40"]


def _points() -> np.ndarray:
    rng = np.random.default_rng(11)
    centers = np.array([[-50.0, -40.0], [30.0, 45.0], [60.0, -30.0]])
    pts = centers[rng.integers(0, 3, 150)] + rng.normal(0, 10, (150, 2))
    return np.round(np.clip(pts, -100, 100), 2)


def test_federated_kmeans_chain_through_nodes_and_agents(tmp_path: Path) -> None:
    from sklearn.cluster import KMeans

    pts = _points()
    cuts = [0, 40, 95, 150]
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        cluster.start_nodes([f"node-{i}" for i in range(3)])
        requester = cluster.member("requester")
        owners = [cluster.member(f"owner-{i}") for i in range(3)]
        for i, m in enumerate(owners):
            f = tmp_path / f"points-{i}.csv"
            rows = [f"{a:.2f},{b:.2f}" for a, b in pts[cuts[i] : cuts[i + 1]]]
            f.write_text("\n".join(["x,y", *rows]) + "\n")
            cfg = tmp_path / f"owner-{i}.toml"
            cfg.write_text("poll_interval = 0.5\nretry_interval = 1.0\n"
                           f'[[dataset]]\nname = "points"\nfile = "{f}"\n')  # fmt: skip
            cluster.start_agent(m, cfg)
        args = ["ml", "kmeans", "--federated", "--column", "x:fixed:2:-100:100",
                "--column", "y:fixed:2:-100:100", "--k", "3", "--init", ",".join(INIT),
                "--iterations", "2", "--reward", "0.1ether", "--max-rows", "1000",
                "--input-timeout", "60", "--report-timeout", "240"]  # fmt: skip
        for m in owners:
            args += ["--owner", m.address]
        for b in cluster.bootstrap(3):
            args += ["--bootstrap", b]
        out = cluster.dnode(requester, *args, timeout=600)

    assert out["program"] == "ml.kmeans_step" and out["steps"] == 2
    assert len(set(out["task_ids"])) == 2
    # the second task's params carried the first task's centroids
    first = [float(v) for v in out["history"][0]]
    got = np.array([float(v) for v in out["values"]]).reshape(3, 3)
    start = np.array(INIT, float).reshape(3, 2)
    one = KMeans(3, init=start, n_init=1, max_iter=1, algorithm="lloyd").fit(pts)
    assert np.abs(np.array(first).reshape(3, 3)[:, :2] - one.cluster_centers_).max() <= 5e-4
    # step 2 from the rounded centroids of step 1: assignment as scikit-learn's from those
    c1 = np.array(first).reshape(3, 3)[:, :2]
    lab = np.argmin(((pts[:, None] - c1[None]) ** 2).sum(axis=2), axis=1)
    want = np.array([pts[lab == j].mean(axis=0) for j in range(3)])
    assert np.abs(got[:, :2] - want).max() <= 5e-4
    assert got[:, 2].tolist() == np.bincount(lab, minlength=3).tolist()


@pytest.mark.long
def test_federated_logreg_chain_through_nodes_and_agents(tmp_path: Path) -> None:
    """``dnode ml logreg --federated``: 3 Newton steps on scikit-learn's breast-cancer data
    (10 features) split across 3 owners' agents; the weights equal, digit for digit, the same
    chain computed from the specs without MPC (owners' statistics, exact public steps)."""
    import math
    from fractions import Fraction

    from sklearn.datasets import load_breast_cancer

    from dnode.cli.sdk.tasks import columns_of
    from dnode.scheduler.programs import TaskParams
    from dnode.scheduler.programs.schema import _dec
    from dnode.scheduler.programs.tables import Table

    x, y = load_breast_cancer(return_X_y=True)
    x = x[:300, :10]
    y = y[:300]
    sc = [max(0, 4 - math.floor(math.log10(x[:, j].max()))) for j in range(10)]
    x = np.column_stack([np.round(x[:, j], s) for j, s in enumerate(sc)])  # what the files hold
    hi = [math.ceil(x[:, j].max() * 2) for j in range(10)]
    specs = [f"f{j}:fixed:{s}:0:{h}" if s else f"f{j}:int:0:{h}"
             for j, (s, h) in enumerate(zip(sc, hi, strict=True))]  # fmt: skip
    cuts = [0, 90, 200, 300]
    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        cluster.start_nodes([f"node-{i}" for i in range(3)])
        requester = cluster.member("requester")
        owners = [cluster.member(f"owner-{i}") for i in range(3)]
        for i, m in enumerate(owners):
            f = tmp_path / f"cancer-{i}.csv"
            rows = [",".join([*(f"{v:.{s}f}" for v, s in zip(r, sc, strict=True)), str(t)])
                    for r, t in zip(x[cuts[i] : cuts[i + 1]], y[cuts[i] : cuts[i + 1]],
                                    strict=True)]  # fmt: skip
            f.write_text("\n".join([",".join([*(f"f{j}" for j in range(10)), "label"]), *rows])
                         + "\n")  # fmt: skip
            cfg = tmp_path / f"owner-{i}.toml"
            cfg.write_text("poll_interval = 0.5\nretry_interval = 1.0\n"
                           f'[[dataset]]\nname = "cancer"\nfile = "{f}"\n')  # fmt: skip
            cluster.start_agent(m, cfg)
        args = ["ml", "logreg", "--federated", *(x for s in specs for x in ("--column", s)),
                "--column", "label:int:0:1", "--iterations", "3", "--reward", "0.1ether",
                "--max-rows", "1000", "--input-timeout", "60",
                "--report-timeout", "240"]  # fmt: skip
        for m in owners:
            args += ["--owner", m.address]
        for b in cluster.bootstrap(3):
            args += ["--bootstrap", b]
        out = cluster.dnode(requester, *args, timeout=900)

    assert out["program"] == "ml.logreg_step" and out["steps"] == 3
    params_cols = tuple(columns_of([*specs, "label:int:0:1"], None))
    enc = np.column_stack([np.rint(x * 10.0 ** np.array(sc)).astype(np.int64), y])
    tables = [Table(params_cols, tuple(tuple(int(v) for v in enc[a:b, j]) for j in range(11)))
              for a, b in zip(cuts, cuts[1:], strict=False)]  # fmt: skip
    weights: list[str] | None = None
    for _ in range(3):
        args_ = {"c": "1", **({"weights": weights} if weights else {})}
        p = TaskParams("ml.logreg_step", tuple(m.address for m in owners), args=args_,
                       columns=params_cols, max_rows=1000)  # fmt: skip
        rows_ = [p.spec.encode_owner(p, t) for t in tables]
        total = [sum(v) for v in zip(*rows_, strict=True)]
        res = p.spec.finish(p, {"sums": total}, 3)
        weights = [str(_dec(Fraction(v))) for v in res.values]
    assert [Fraction(v) for v in out["values"]] == [Fraction(v) for v in weights or []]
