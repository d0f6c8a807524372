"""ml.infer through real node processes: one owner keeps a logistic-regression model (trained by
scikit-learn on the breast-cancer data's 10 "mean" features) secret-shared into the task's
committee, two other owners hold the held-out rows; the requester reads the classes privately
and they equal scikit-learn's ``predict`` with the same decimal model; no node's log or state
holds a coefficient of the model."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnode.cli.devcluster import DevCluster
from tests.test_e2e_capture import holds_number
from tests.test_e2e_ml import _cancer

pytestmark = pytest.mark.slow

SCALE = 6


def test_inference_with_a_secret_shared_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte, ytr, _, sc = _cancer()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(xtr, ytr)
    coef = pipe[1].coef_[0] / pipe[0].scale_
    b = pipe[1].intercept_[0] - float(np.dot(coef, pipe[0].mean_))
    model = [f"{Decimal(float(v)):.{SCALE}f}" for v in [*coef, b]]
    ref = LogisticRegression()  # the same decimal model for scikit-learn's predict
    ref.classes_ = np.array([0, 1])
    ref.coef_ = np.array([[float(v) for v in model[:-1]]])
    ref.intercept_ = np.array([float(model[-1])])
    bound = math.ceil(max(abs(float(v)) for v in model)) + 1

    names = [f"f{j}" for j in range(10)]
    files = {"model-owner": tmp_path / "model.csv"}
    files["model-owner"].write_text(",".join([*(f"w_{n}" for n in names), "intercept"]) + "\n"
                                    + ",".join(model) + "\n")  # fmt: skip
    lines = [",".join(f"{v:.{s}f}" for v, s in zip(r, sc, strict=True)) for r in xte]
    half = len(lines) // 2 + 5
    for i, part in enumerate((lines[:half], lines[half:])):
        files[f"owner-{i}"] = tmp_path / f"rows-{i}.csv"
        files[f"owner-{i}"].write_text("\n".join([",".join(names), *part]) + "\n")
    cols = [f"{n}:fixed:{s}:0:{math.ceil(xtr[:, j].max() * 2)}" if s else
            f"{n}:int:0:{math.ceil(xtr[:, j].max() * 2)}"
            for j, (n, s) in enumerate(zip(names, sc, strict=True))]  # fmt: skip

    cluster = DevCluster(tmp_path, challenge_period=4)
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)])
        requester = cluster.member("requester")
        owners = {n: cluster.member(n) for n in files}
        boot = cluster.bootstrap()[0]
        task_id = cluster.post_mpc(
            requester, list(owners.values()), "ml.infer",
            extra=[*(x for c in cols for x in ("--column", c)),
                   "--model-owner", owners["model-owner"].address,
                   "--model-scale", str(SCALE), "--model-bound", str(bound),
                   "--max-rows", "200", "--private-result",
                   "--input-timeout", "600", "--report-timeout", "1200"],
        )  # fmt: skip
        cluster.contribute_all(task_id, owners, files)
        res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "1200",
                            "--bootstrap", boot)  # fmt: skip
        logs = [n.log_path for n in nodes]
        state = [p for n in nodes for p in n.member.home.rglob("*") if p.is_file()]

    assert res["private"] is True, res
    got = [int(Fraction(v, 10 ** res["decimals"])) for v in res["values_scaled"]]
    assert res["count"] == len(xte) == len(got)
    # the same decimal model evaluated exactly, and scikit-learn's predict: identical classes
    w = [Fraction(v) for v in model]
    exact = [int(sum(Fraction(t) * c for t, c in zip(r.split(","), w, strict=False)) + w[-1] > 0)
             for r in lines]  # fmt: skip
    assert got == exact
    assert got == ref.predict(xte).tolist()
    assert 0 < sum(got) < len(got)

    # privacy: no coefficient of the model (its text or its encoding) in a node's log or state;
    # values of fewer than 5 digits could occur in a log by chance and are not searched, and
    # an encoding (a bare integer) only from 6 digits: a node's state file holds 5-digit port
    # numbers (its metrics port 40347 once matched a coefficient encoded as 40347)
    secrets = set()
    for v in model:
        enc = str(int(Fraction(v) * 10**SCALE))
        if len(enc.lstrip("-")) >= 5:
            secrets |= {v, v.lstrip("-")}
        if len(enc.lstrip("-")) >= 6:
            secrets |= {enc, enc.lstrip("-")}
    assert len(secrets) >= 8, model
    held = files["model-owner"].read_bytes()  # the search finds them where they are (its file)
    assert all(holds_number(held, s) for s in secrets if "." in s)
    for f in [*logs, *state]:
        data = f.read_bytes()
        for s in secrets:
            assert not holds_number(data, s), (f, s)
    for log in logs:
        assert "Traceback" not in log.read_text()
