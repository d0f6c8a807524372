"""``synth.mst``'s spec without MPC: what it refuses before anything is paid, the public binning,
the privacy plan (OpenDP) and its split, the tree, the result layout, and the requester's
post-processing (mbi fit and sample, the quality report) on known marginals."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams
from dnode.scheduler.programs.synth import model
from dnode.scheduler.programs.synth.build import synth_params, write_outputs
from dnode.scheduler.programs.synth.spec import (
    SynthMst,
    independent_estimate,
    mst_tree,
    pairs,
    unpack,
)

A = ("0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222")
KEY = "ab" * 32
ID = Column("id", "id")
AGE = Column("age", "int", 0, Fraction(18), Fraction(81))
SAL = Column("salary", "fixed", 2, Fraction(0), Fraction(1000))
REG = Column("region", "cat", domain=("n", "s"))
VERT = {"mode": "vertical", "tables": [["age"], ["salary"]]}


def _p(**kw: object) -> TaskParams:
    d: dict = {"program": "synth.mst", "owners": A, "columns": (ID, AGE, SAL),
               "result_key": KEY, "args": {"epsilon": "1", "layout": VERT}}  # fmt: skip
    d.update(kw)
    return TaskParams(**d)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"result_key": ""}, "private result"),
        ({"args": {"layout": VERT}}, "--epsilon"),
        ({"args": {"epsilon": "1", "layout": {"mode": "diagonal"}}}, "layout.mode"),
        ({"columns": (AGE, SAL)}, "one id column"),
        ({"owners": (*A, "0x3333333333333333333333333333333333333333")}, "2 data owners"),
        ({"args": {"epsilon": "1", "layout": {"mode": "vertical", "tables": [["age"], []]}}},
         "split the value columns"),
        ({"args": {"epsilon": "1", "bins": 1, "layout": VERT}}, "bins"),
        ({"args": {"epsilon": "0", "layout": VERT}}, "epsilon"),
        ({"args": {"epsilon": "1", "rho": "1", "layout": VERT}}, "not both"),
        ({"columns": (ID, AGE)}, "2..8 value columns"),
    ],
)  # fmt: skip
def test_refused_before_posting(kw: dict, why: str) -> None:
    with pytest.raises(InvalidTaskParams, match=why):
        _p(**kw)


def test_binning_is_the_declared_range_in_equal_bins() -> None:
    p = _p(args={"epsilon": "1", "bins": 4, "layout": VERT})
    spec = p.spec
    assert isinstance(spec, SynthMst)
    age, sal = spec.binned(p)
    assert age.labels() == ["[18,33]", "[34,49]", "[50,65]", "[66,81]"]
    assert [age.bin_of(v) for v in (18, 33, 34, 81)] == [0, 0, 1, 3]
    assert sal.edges()[0] == (0, 25000) and sal.edges()[-1][1] == 100000
    # a range narrower than the bins: one bin per value
    small = Column("k", "int", 0, Fraction(0), Fraction(2))
    q = _p(columns=(ID, small, SAL), args={"epsilon": "1", "layout": {
        "mode": "vertical", "tables": [["k"], ["salary"]]}})  # fmt: skip
    assert [b.k for b in spec.binned(q)] == [3, 8]


def test_plan_splits_epsilon_over_the_releases_with_their_sensitivities() -> None:
    two = _p()
    spec = two.spec
    assert isinstance(spec, SynthMst)
    plan = spec.plan(two)
    assert [(n.release.name, n.release.sensitivity) for n in plan.noises] == [
        ("one", 4), ("two", 2)]  # fmt: skip
    assert plan.epsilon == pytest.approx(1.0)
    three = _p(columns=(ID, AGE, SAL, REG), args={"epsilon": "0.9", "layout": {
        "mode": "vertical", "tables": [["age", "region"], ["salary"]]}})  # fmt: skip
    plan3 = spec.plan(three)
    rel = {n.release.name: n for n in plan3.noises}
    assert {k: r.release.sensitivity for k, r in rel.items()} == {"one": 6, "scores": 6, "two": 4}
    assert {k: round(r.epsilon, 9) for k, r in rel.items()} == {"one": 0.3, "scores": 0.3,
                                                                 "two": 0.3}  # fmt: skip
    assert rel["one"].scale == pytest.approx(6 / 0.3, rel=1e-6)
    assert plan3.cost(1) >= 900_000 and plan3.cost(1) <= 900_001
    assert spec.guarantee(three)["committee_sees"].startswith("the noisy 1-way")


def test_tree_is_the_maximum_spanning_tree_of_the_scores() -> None:
    # pairs of 4 columns: (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert mst_tree(4, [10, 1, 1, 9, 1, 8]) == [0, 3, 5]
    assert mst_tree(4, [5, 5, 5, 5, 5, 5]) == [0, 1, 2]  # ties: lowest pair index first
    assert mst_tree(2, [0]) == [0]
    n, est = independent_estimate([[10, 30], [-5, 20, 20]])
    assert n == 38 and est == [[[0, 5, 5], [0, 14, 14]]]  # 38 * 1/4 * 1/2 = 4.75 -> 5


def test_result_layout_round_trips() -> None:
    p = _p(args={"epsilon": "1", "bins": 3, "layout": VERT})
    spec = p.spec
    assert isinstance(spec, SynthMst)
    revealed = {"one": [1, 2, 3, 4, 5, 6], "scores": [0], "edges": [0],
                "two": list(range(9))}  # fmt: skip
    out = spec.finish(p, revealed, 99)
    assert out.shape == spec.out_shape(p) and len(out.values) == out.shape[0]
    assert out.count == 6  # the noisy total, never the session's row count
    m = unpack(spec, p, out.values)
    assert m.one == ((1, 2, 3), (4, 5, 6)) and m.edges == ((0, 1),)
    assert m.two == (((0, 1, 2), (3, 4, 5), (6, 7, 8)),) and m.scores == ()
    with pytest.raises(InvalidTaskParams, match="no tree"):
        unpack(spec, p, [*out.values[:7], Fraction(5), *out.values[8:]])


def test_synth_params_from_two_schemas() -> None:
    p = synth_params([("people", (ID, AGE)), ("pay", (ID, SAL))], A, join="id", epsilon="1",
                     result_key=KEY)  # fmt: skip
    assert p.args["layout"] == VERT and [c.name for c in p.columns] == ["id", "age", "salary"]
    with pytest.raises(InvalidTaskParams, match="both tables"):
        synth_params([("a", (ID, AGE)), ("b", (ID, AGE))], A, join="id", epsilon="1",
                     result_key=KEY)  # fmt: skip
    with pytest.raises(InvalidTaskParams, match="no id column 'key'"):
        synth_params([("a", (ID, AGE)), ("b", (ID, SAL))], A, join="key", epsilon="1")
    h = synth_params([("a", (ID, AGE, SAL)), ("b", (AGE, SAL))], A, join=None, epsilon="1",
                     result_key=KEY)  # fmt: skip
    assert h.args["layout"] == {"mode": "horizontal"} and len(h.columns) == 2


@pytest.mark.long  # ~20 s: JAX compiles mbi's model (the e2e test fits one by default)
def test_post_processing_recovers_exact_marginals(tmp_path: Path) -> None:
    """Measurements without noise (a dependent pair): the sampled rows keep the 2-way
    marginal, the report says so, and the CSV decodes inside the declared ranges."""
    p = _p(args={"epsilon": "4", "bins": 4, "layout": VERT})
    spec = p.spec
    assert isinstance(spec, SynthMst)
    joint = np.array([[40, 10, 0, 0], [5, 60, 5, 0], [0, 10, 50, 10], [0, 0, 10, 60]])
    one = [*joint.sum(axis=1).tolist(), *joint.sum(axis=0).tolist()]
    values = [*one, 0, 0, *joint.reshape(-1).tolist()]
    out = tmp_path / "s.csv"
    doc = write_outputs(p, values, rows=2000, out=out, seed=3)
    q = doc["quality"]
    assert q["tvd_2way_vs_noisy"]["age~salary"] < 0.05
    assert q["correlation"]["age~salary"]["noisy"] == pytest.approx(
        q["correlation"]["age~salary"]["synthetic"], abs=0.05)  # fmt: skip
    lines = out.read_text().splitlines()
    assert lines[0] == "age,salary" and len(lines) == 2001
    ages = [int(r.split(",")[0]) for r in lines[1:]]
    sals = [Fraction(r.split(",")[1]) for r in lines[1:]]
    assert min(ages) >= 18 and max(ages) <= 81 and min(sals) >= 0 and max(sals) <= 1000
    assert Path(doc["report"]).exists() and doc["guarantee"]["epsilon"] == "4"
    assert model.tvd(np.array([1, 0]), np.array([0, 1])) == 1.0
    assert pairs(3) == [(0, 1), (0, 2), (1, 2)]
