"""ml.predict in real MPyC party processes: the classes of held-out breast-cancer rows under a
public model agree with scikit-learn's ``predict`` of the same (decimal) model."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
import trio

from dnode.node.mpc import influence
from dnode.node.mpc.executor import MpcResult
from dnode.node.mpc.influence import table_witness
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import TaskParams
from tests.node.test_malicious import ADDRS, _jobs, _run
from tests.node.test_ml_logreg import cancer, columns, owners, scales


def test_predict_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte, ytr, _ = cancer()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(xtr, ytr)
    sc, lr = pipe[0], pipe[1]
    coef = lr.coef_[0] / sc.scale_
    b = lr.intercept_[0] - float(np.dot(coef, sc.mean_))
    model = [f"{Decimal(float(v)):.12f}" for v in [*coef, b]]
    w = np.array([float(v) for v in model])
    rows = xte[:15]
    cols = columns(xtr)[:-1]
    params = TaskParams("ml.predict", ADDRS, columns=cols, args={"model": model}, max_rows=16)
    wit = influence.task_witness(params)
    assert wit is not None
    enc = owners(rows, np.zeros(len(rows), dtype=int), scales(xtr))
    enc = [[v for i, v in enumerate(o) if i % (len(cols) + 1) != len(cols)] for o in enc]
    vecs = [[*o, *table_witness(o, wit)] for o in enc]
    res = trio.run(_run, _jobs("ml.predict", vecs, checks=True, tid=71, params=params))
    assert all(isinstance(r, MpcResult) for r in res), res
    got = [int(v) for v in params.spec.finish(params, res[0].revealed, res[0].rows).values]
    want = (rows @ w[:-1] + w[-1] > 0).astype(int).tolist()
    assert got == want
    assert got == pipe.predict(rows).tolist()


def test_predict_refusals():
    xtr, _, _, _ = cancer()
    cols = columns(xtr)[:-1]
    with pytest.raises(InvalidTaskParams, match="model needs 31 values"):
        TaskParams("ml.predict", ADDRS, columns=cols, args={"model": ["1"]}, max_rows=16)
    with pytest.raises(InvalidTaskParams, match="ask for a private result"):
        TaskParams("ml.predict", ADDRS, columns=cols, args={"model": ["0"] * 31}, max_rows=17)
