"""ml.infer in real MPyC party processes: a logistic-regression model trained by scikit-learn on
the breast-cancer data is shared by one owner (never in the clear at any seat), held-out rows
of two other owners are scored, and the classes equal scikit-learn's ``predict`` with the same
(decimal) model.  Attacks first: a model owner sharing a coefficient out of its declared range,
a data owner sharing a value out of range, a model owner sharing two rows."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import trio

from dnode.node.errors import CheatingDetectedError
from dnode.node.mpc import influence
from dnode.node.mpc.executor import MpcResult
from dnode.node.mpc.influence import table_witness
from dnode.scheduler.errors import InvalidTaskParams, SchedulerError
from dnode.scheduler.programs import Column, TaskParams
from dnode.scheduler.programs.tables import Table
from tests.node.test_malicious import ADDRS, _jobs, _run
from tests.node.test_ml_logreg import cancer, columns

SCALE = 6  # decimals of the shared model


def _trained():
    """(held-out rows, the model in column units at SCALE decimals, scikit-learn's pipeline
    re-fitted with exactly those decimals) for the breast-cancer data."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, xte, ytr, _ = cancer()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(xtr, ytr)
    sc, lr = pipe[0], pipe[1]
    coef = lr.coef_[0] / sc.scale_
    b = lr.intercept_[0] - float(np.dot(coef, sc.mean_))
    model = [Fraction(f"{Decimal(float(v)):.{SCALE}f}") for v in [*coef, b]]
    ref = LogisticRegression()  # the same decimal model, in column units, for predict
    ref.classes_ = np.array([0, 1])
    ref.coef_ = np.array([[float(v) for v in model[:-1]]])
    ref.intercept_ = np.array([float(model[-1])])
    return xtr, xte, model, ref


def _params(xtr: np.ndarray, model: list[Fraction], max_rows: int = 16, **kw) -> TaskParams:
    bound = math.ceil(max(abs(v) for v in model)) + 1
    args = {"model_scale": SCALE, "model_bound": str(bound), **kw}
    return TaskParams("ml.infer", ADDRS, columns=columns(xtr)[:-1], args=args,
                      max_rows=max_rows)  # fmt: skip


def _encode(params: TaskParams, model: list[Fraction], rows: np.ndarray) -> list[list[int]]:
    """Owner 0 encodes the model (its columns), owners 1 and 2 half of the rows each, as the
    owner CLI does (spec.owner_columns + spec.encode_owner)."""
    spec = params.spec
    mcols = spec.owner_columns(params, 0)
    menc = tuple((int(v * 10**SCALE),) for v in model)
    out = [spec.encode_owner(params, Table(mcols, menc))]
    cols = spec.owner_columns(params, 1)
    for part in (rows[: len(rows) // 2], rows[len(rows) // 2 :]):
        data = tuple(tuple(int(round(v * 10**c.scale)) for v in part[:, j])
                     for j, c in enumerate(cols))  # fmt: skip
        out.append(spec.encode_owner(params, Table(cols, data)))
    return out


def _forged(values: list[int], w: influence.TableWitness) -> list[int]:
    """The witness bits a cheating owner computes for its real values (q clamped into its
    bit length: no valid witness exists for an out-of-range value)."""
    rows = len(values) // w.width
    out: list[int] = []
    for q, ell in zip(influence._table_quantities(values, w), influence.table_layout(rows, w),
                      strict=True):  # fmt: skip
        q = min(max(q, 0), (1 << ell) - 1)
        out += [(q >> j) & 1 for j in range(ell)]
    return out


def _go(params: TaskParams, owners: list[list[int]], witness: bool = True, checks: bool = True):
    w = influence.task_witness(params)
    assert w is not None
    vecs = owners
    if witness:
        vecs = []
        for o in owners:
            try:
                vecs.append([*o, *table_witness(o, w)])
            except ValueError:  # out of range: the cheater forges what it can
                vecs.append([*o, *_forged(o, w)])
    jobs = _jobs("ml.infer", vecs, checks=checks, witness=witness, tid=81, params=params)
    return trio.run(_run, jobs, None, "", 0, 300)


@pytest.mark.parametrize("checks", [True, False])
def test_infer_matches_scikit_learn_predict(checks):
    xtr, xte, model, ref = _trained()
    rows = xte[:15]
    params = _params(xtr, model)
    res = _go(params, _encode(params, model, rows), checks=checks)
    assert all(isinstance(r, MpcResult) for r in res), res
    out = params.spec.finish(params, res[0].revealed, res[0].rows)
    got = [int(v) for v in out.values]
    exact = [int(sum(Fraction(str(x)) * w for x, w in zip(r, model, strict=False)) + model[-1] > 0)
             for r in rows]  # fmt: skip
    assert got == exact
    assert got == ref.predict(rows).tolist()
    assert 0 < sum(got) < len(got)  # both classes occur: a constant answer would fail


def test_multinomial_infer_matches_scikit_learn_predict():
    """Three iris classes: the model owner shares one weight vector and intercept per class;
    the class is the argmax of the three scores (k - 1 checked comparisons per row)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    xtr, xte, ytr, _ = train_test_split(np.round(x, 1), y, test_size=15, random_state=0,
                                        stratify=y)  # fmt: skip
    lr = LogisticRegression(max_iter=1000).fit(xtr, ytr)
    coef = [[Fraction(f"{Decimal(float(v)):.{SCALE}f}") for v in row] for row in lr.coef_]
    icpt = [Fraction(f"{Decimal(float(v)):.{SCALE}f}") for v in lr.intercept_]
    model = [v for c, b in zip(coef, icpt, strict=True) for v in [*c, b]]
    ref = LogisticRegression()
    ref.classes_ = np.array([0, 1, 2])
    ref.coef_ = np.array([[float(v) for v in c] for c in coef])
    ref.intercept_ = np.array([float(v) for v in icpt])
    cols = tuple(Column(f"f{j}", "fixed", 1, Fraction(0), Fraction(10)) for j in range(4))
    bound = math.ceil(max(abs(v) for v in model)) + 1
    params = TaskParams(
        "ml.infer",
        ADDRS,
        columns=cols,
        max_rows=16,
        args={"model_scale": SCALE, "model_bound": str(bound), "classes": 3},
    )
    assert [c.name for c in params.spec.owner_columns(params, 0)][4:6] == ["intercept0", "w1_f0"]
    res = _go(params, _encode(params, model, xte))
    assert all(isinstance(r, MpcResult) for r in res), res
    got = [int(v) for v in params.spec.finish(params, res[0].revealed, res[0].rows).values]
    scores = [[sum(Fraction(str(v)) * w for v, w in zip(r, c, strict=True)) + b
               for c, b in zip(coef, icpt, strict=True)] for r in xte]  # fmt: skip
    assert got == [max(range(3), key=lambda j, s=sc: (s[j], -j)) for sc in scores]
    assert got == ref.predict(xte).tolist()
    assert set(got) == {0, 1, 2}


def test_model_coefficient_out_of_range_is_detected_naming_the_model_owner():
    """The model owner shares a coefficient of 10**30 (declared |w| <= bound): the in-MPC
    range check aborts before any row meets the model, naming owner 0."""
    xtr, xte, model, _ = _trained()
    params = _params(xtr, model)
    enc = _encode(params, model, xte[:6])
    d = len(params.columns)
    enc[0][d + 3] = 10**30  # w_3, far beyond the bound; the intercept stays legal
    for witness in (True, False):  # with or without the owner's influence witness
        res = _go(params, enc, witness=witness)
        for r in res:
            assert isinstance(r, CheatingDetectedError), res
            assert r.owner == 0, r
        if not witness:  # only the in-MPC range check of the model could catch it
            assert "model value" in str(res[0]), res


def test_model_just_beyond_the_bound_is_detected():
    """|w| = bound + 10**-6 (one unit): refused by the range check alone (no witness)."""
    xtr, xte, model, _ = _trained()
    params = _params(xtr, model)
    enc = _encode(params, model, xte[:4])
    d = len(params.columns)
    enc[0][2 * d] = -(params.spec.model_bound(params) + 1)  # the intercept
    res = _go(params, enc, witness=False)
    assert all(isinstance(r, CheatingDetectedError) and r.owner == 0 for r in res), res


def test_data_value_out_of_range_is_detected_naming_its_owner():
    xtr, xte, model, _ = _trained()
    params = _params(xtr, model)
    enc = _encode(params, model, xte[:6])
    enc[2][1] = 10**25  # a feature of owner 2's first row
    res = _go(params, enc)
    assert all(isinstance(r, CheatingDetectedError) and r.owner == 2 for r in res), res


def test_model_owner_sharing_two_rows_is_refused():
    xtr, xte, model, _ = _trained()
    params = _params(xtr, model)
    enc = _encode(params, model, xte[:4])
    enc[0] = enc[0] * 2
    res = _go(params, enc)
    assert all(isinstance(r, CheatingDetectedError) and r.owner == 0 for r in res), res
    assert "not one" in str(res[0])


def test_bad_arguments_are_one_line_errors(tmp_path: Path):
    xtr, _, model, _ = _trained()
    cols = columns(xtr)[:-1]
    with pytest.raises(InvalidTaskParams, match="is not one of the task's owners"):
        TaskParams("ml.infer", ADDRS, columns=cols, args={"model_owner": "0x" + "1" * 40},
                   max_rows=16)  # fmt: skip
    with pytest.raises(InvalidTaskParams, match="needs a model owner and at least one owner"):
        TaskParams("ml.infer", ADDRS[:1], columns=cols, max_rows=16)
    with pytest.raises(InvalidTaskParams, match="ask for a private result"):
        TaskParams("ml.infer", ADDRS, columns=cols, max_rows=18)
    with pytest.raises(InvalidTaskParams, match="model_scale must be"):
        TaskParams("ml.infer", ADDRS, columns=cols, args={"model_scale": 40}, max_rows=16)
    with pytest.raises(InvalidTaskParams, match="model_bound must be > 0"):
        TaskParams("ml.infer", ADDRS, columns=cols, args={"model_bound": "0"}, max_rows=16)
    with pytest.raises(InvalidTaskParams, match="classes must be 2..16"):
        TaskParams("ml.infer", ADDRS, columns=cols, args={"classes": 1}, max_rows=16)
    # the model owner's file: its columns are w_<column> and intercept, exactly one row
    params = _params(xtr, model, model_owner=ADDRS[1])
    assert params.spec.model_owner(params) == 1
    names = [c.name for c in params.spec.owner_columns(params, 1)]
    assert names == [*(f"w_{c.name}" for c in cols), "intercept"]
    short = tmp_path / "model.csv"  # a coefficient short (no intercept)
    short.write_text(",".join(names[:-1]) + "\n" + ",".join(["0.5"] * (len(names) - 1)) + "\n")
    with pytest.raises(SchedulerError, match="intercept") as e:
        params.encode_table(short, ADDRS[1])
    assert "\n" not in str(e.value)
    two = tmp_path / "model2.csv"
    two.write_text(",".join(names) + "\n" + (",".join(["0.5"] * len(names)) + "\n") * 2)
    with pytest.raises(InvalidTaskParams, match="exactly one row"):
        params.encode_table(two, ADDRS[1])
    big = tmp_path / "model3.csv"
    big.write_text(",".join(names) + "\n" + ",".join(["1e9"] * len(names)) + "\n")
    with pytest.raises(SchedulerError):
        params.encode_table(big, ADDRS[1])
