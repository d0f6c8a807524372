"""ml.logreg in real MPyC party processes on scikit-learn's breast-cancer data (569 x 30,
binary) split across 3 owners, against ``StandardScaler + LogisticRegression(C)`` trained on
the same rows: test accuracy within 1 percentage point."""

from __future__ import annotations

import math
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

DIGITS = 5  # significant digits kept per feature (its column's scale follows)
KEY = "ab" * 32  # a private result: 31 values do not fit on chain


def cancer(seed: int = 0):
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x = np.column_stack([np.round(x[:, j], s) for j, s in enumerate(scales(x))])
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def scales(x: np.ndarray) -> list[int]:
    return [max(0, DIGITS - 1 - math.floor(math.log10(x[:, j].max()))) for j in range(x.shape[1])]


def columns(x: np.ndarray) -> tuple[Column, ...]:
    cols = [Column(f"f{j}", "fixed", s, Fraction(0), Fraction(math.ceil(x[:, j].max() * 2)))
            for j, s in enumerate(scales(x))]  # fmt: skip
    return (*cols, Column("label", "int", 0, Fraction(0), Fraction(1)))


def owners(x: np.ndarray, y: np.ndarray, sc: list[int] | None = None) -> list[list[int]]:
    sc = sc or scales(x)
    rows = [[int(round(v * 10**s)) for v, s in zip(r, sc, strict=True)] + [int(t)]
            for r, t in zip(x, y, strict=True)]  # fmt: skip
    cuts = [0, len(rows) // 4, len(rows) // 2 + 20, len(rows)]
    return [[v for r in rows[a:b] for v in r] for a, b in zip(cuts, cuts[1:], strict=False)]


def accuracy(model: list[float], x: np.ndarray, y: np.ndarray) -> float:
    coef, b = np.array(model[:-1]), model[-1]
    return float(((x @ coef + b > 0) == y).mean())


@pytest.mark.soak  # ~2 min on 2 cores; `pytest -m soak` (tests/test_e2e_ml.py trains in CI)
@pytest.mark.timeout(3000)
def test_logreg_matches_scikit_learn_accuracy():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte, ytr, yte = cancer()
    params = TaskParams("ml.logreg", ADDRS, columns=columns(xtr), args={"c": "1"},
                        max_rows=1000, result_key=KEY)  # fmt: skip
    params.spec.validate(params)
    w = influence.task_witness(params)
    assert w is not None
    vecs = [[*o, *table_witness(o, w)] for o in owners(xtr, ytr)]
    res = trio.run(_run, _jobs("ml.logreg", vecs, checks=True, tid=61, params=params), None,
                   "", 0, 2900)  # fmt: skip
    assert all(isinstance(r, MpcResult) for r in res), res
    out = params.spec.finish(params, res[0].revealed, res[0].rows)
    model = [float(v) for v in out.values]
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(xtr, ytr)
    got, want = accuracy(model, xte, yte), ref.score(xte, yte)
    assert abs(got - want) <= 0.01, (got, want)
    assert got >= 0.95


def test_logreg_refuses_bad_labels_and_a_public_result_that_does_not_fit():
    xtr, _, _, _ = cancer()
    cols = columns(xtr)
    with pytest.raises(InvalidTaskParams, match="ask for a private result"):
        TaskParams("ml.logreg", ADDRS, columns=cols, max_rows=1000)
    bad = (*cols[:3], Column("label", "int", 0, Fraction(0), Fraction(2)))
    with pytest.raises(InvalidTaskParams, match="must be declared int with range"):
        TaskParams("ml.logreg", ADDRS, columns=bad, max_rows=1000)
    with pytest.raises(InvalidTaskParams, match=r"c \(scikit-learn C\) must be > 0"):
        TaskParams("ml.logreg", ADDRS, columns=(*cols[:3], cols[-1]), args={"c": "0"})


def test_label_beyond_0_1_counts_as_1():
    """An owner labels one row 7 (declared [0, 1]): its sum (7) and sum of squares (49) stay
    inside what its 60 rows' influence witness allows, so only the clamp stops the row from
    weighing 7 times a legal one.  The model equals the one trained with that label at 1."""
    from tests.node.test_ml_kmeans import _forged_witness

    rng = np.random.default_rng(5)
    x = np.round(rng.normal(0, 1, (90, 3)), 2)
    y = (x @ np.array([1.5, -1.0, 0.5]) + rng.normal(0, 0.5, 90) > 0).astype(int)
    y[30:90] = 0
    y[45] = 1  # the row the cheater relabels
    cols = tuple(Column(f"f{j}", "fixed", 2, Fraction(-5), Fraction(5)) for j in range(3))
    cols = (*cols, Column("label", "int", 0, Fraction(0), Fraction(1)))
    params = TaskParams("ml.logreg", ADDRS, columns=cols, args={"iterations": 3}, max_rows=100)
    w = influence.task_witness(params)
    assert w is not None
    rows = [[int(round(v * 100)) for v in r] + [int(t)] for r, t in zip(x, y, strict=True)]
    owners_ = [[v for r in rows[a:b] for v in r] for a, b in ((0, 30), (30, 90), (90, 90))]
    owners_[2] = [v for r in rows[:1] for v in r]  # owner 2: one row (a copy)
    evil = list(owners_[1])
    evil[15 * 4 + 3] = 7  # row 45's label
    vecs = [[*o, *table_witness(o, w)] for o in owners_]
    vecs[1] = [*evil, *_forged_witness(evil, w)]
    res = trio.run(_run, _jobs("ml.logreg", vecs, checks=True, tid=62, params=params), None,
                   "", 0, 900)  # fmt: skip
    assert all(isinstance(r, MpcResult) for r in res), res
    honest = [[*o, *table_witness(o, w)] for o in owners_]
    ref = trio.run(_run, _jobs("ml.logreg", honest, checks=True, tid=63, params=params), None,
                   "", 0, 900)  # fmt: skip
    assert res[0].revealed == ref[0].revealed
