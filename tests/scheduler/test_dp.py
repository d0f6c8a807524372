"""Differential privacy calibration, composition and budget checks (scheduler.dp), and the
node's refusal of a task whose on-chain charge is below the composed cost of its params."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import opendp.prelude as dp
import pytest

from dnode.contracts.data_market import TaskDataset
from dnode.scheduler import dp as D
from dnode.scheduler.dp import budget_refusal
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import Column, TaskParams

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
)
AGE = Column("age", "int", 0, Fraction(0), Fraction(120))
INCOME = Column("income", "fixed", 2, Fraction(0), Fraction(200000))


def _params(program: str, cols=(AGE,), **args: object) -> TaskParams:
    return TaskParams(program, OWNERS, columns=cols, args=args)


@dataclass
class _Info:
    budget_kind: int


class _Chain:
    """What budget_refusal reads of the chain: each dataset's budget kind."""

    def __init__(self, kinds: dict[int, int]) -> None:
        self.kinds = kinds

    def dataset_info(self, dataset_id: int) -> _Info:
        return _Info(self.kinds[dataset_id])


@dataclass
class _Task:
    datasets: tuple[TaskDataset, ...]


# ------------------------------------------------------------------ the attack, first


def test_a_node_refuses_a_task_charged_less_than_its_noisy_outputs_cost() -> None:
    """A requester charges 0.01 epsilon on-chain but asks for epsilon = 5 outputs: refused."""
    params = _params("mpc.variance", epsilon="5")
    cheap = _Task((TaskDataset(1, 10_000, 0), TaskDataset(2, 10_000, 0)))
    why = budget_refusal(_Chain({1: 1, 2: 1}), cheap, params)
    assert why is not None and "charged 0.01 epsilon" in why and "compose to 5" in why
    # charged exactly the composed cost: accepted
    fair = _Task((TaskDataset(1, 5_000_000, 0), TaskDataset(2, 5_000_000, 0)))
    assert budget_refusal(_Chain({1: 1, 2: 1}), fair, params) is None
    # one dataset of two undercharged is enough to refuse
    half = _Task((TaskDataset(1, 5_000_000, 0), TaskDataset(2, 4_999_999, 0)))
    assert "dataset 2" in (budget_refusal(_Chain({1: 1, 2: 1}), half, params) or "")
    # a zCDP budget is charged rho: epsilon 5 over 2 releases is 2 * (2.5^2 / 2) = 6.25 rho
    rho_fair = _Task((TaskDataset(3, 6_250_000, 0),))
    assert budget_refusal(_Chain({3: 2}), rho_fair, params) is None
    rho_cheap = _Task((TaskDataset(3, 5_000_000, 0),))
    assert "rho" in (budget_refusal(_Chain({3: 2}), rho_cheap, params) or "")
    # an exact (non-DP) task or a task over no dataset is not this check's business
    assert budget_refusal(_Chain({}), cheap, _params("mpc.variance")) is None
    assert budget_refusal(_Chain({}), _Task(()), params) is None


# ------------------------------------------------------------------ calibration


def test_calibration_and_composition_are_opendps() -> None:
    params = _params("mpc.variance", cols=(AGE, INCOME), epsilon="1")
    plan = params.spec.dp_plan(params)
    assert plan is not None
    rel = {n.release.name: n for n in plan.noises}
    # sums: one changed row moves each column sum by at most hi - lo (encoded units)
    assert rel["sum"].release.sensitivity == 120 + 200000 * 100
    assert rel["sumsq"].release.sensitivity == 120**2 + (200000 * 100) ** 2
    dp.enable_features("contrib")
    for n in plan.noises:  # each release costs epsilon / 2 under OpenDP's own discrete Laplace
        m = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"),
                              scale=n.scale)  # fmt: skip
        assert m.map(n.release.sensitivity) == pytest.approx(0.5, rel=1e-9)
        assert m.map(n.release.sensitivity) <= 0.5 + 1e-12
    assert plan.epsilon == pytest.approx(1.0) and plan.rho == pytest.approx(2 * 0.5**2 / 2)
    assert plan.cost(D.KIND_EPSILON) == 1_000_000 and plan.cost(D.KIND_RHO) == 250_000
    assert 0 < plan.delta <= 1e-9
    g = params.spec.guarantee(params)
    assert g is not None and g["epsilon"] == "1" and g["releases"][0]["name"] == "sum"


def test_rho_target_is_met_by_composition() -> None:
    params = TaskParams("mpc.histogram", OWNERS, columns=(AGE,),
                        args={"bins": "0,30,60,120", "rho": "0.125"})  # fmt: skip
    plan = params.spec.dp_plan(params)
    assert plan is not None and plan.rho == pytest.approx(0.125)
    assert plan.epsilon == pytest.approx(math.sqrt(2 * 0.125))
    (n,) = plan.noises
    assert n.release.sensitivity == 2 and n.release.size == 3


def test_smaller_delta_asks_for_more_precision() -> None:
    loose = D.plan([D.Release("x", 4, 10)], D.dp_target({"epsilon": "1", "delta": "1e-6"}))
    tight = D.plan([D.Release("x", 4, 10)], D.dp_target({"epsilon": "1", "delta": "1e-15"}))
    assert loose.bits < tight.bits and tight.delta <= 1e-15 and loose.delta <= 1e-6


@pytest.mark.parametrize(
    ("program", "args", "why"),
    [
        ("mpc.count", {"epsilon": "1"}, "offers no differential privacy.*public anyway"),
        ("psi.intersection", {"epsilon": "1"}, "no differential privacy.*per-record output"),
        ("psi.label", {"rho": "1"}, "no differential privacy.*per-record output"),
        ("he.mean", {"epsilon": "1"}, "no differential privacy.*requester's own data"),
        ("mpc.mean", {"epsilon": "1", "rho": "1"}, "not both"),
        ("mpc.mean", {"epsilon": "0"}, "epsilon must be in"),
        ("mpc.mean", {"delta": "1e-9"}, "--delta needs"),
        ("mpc.mean", {"epsilon": "1", "delta": "2"}, "delta must be in"),
    ],
)
def test_bad_dp_arguments_are_one_line_errors(program: str, args: dict, why: str) -> None:
    with pytest.raises(InvalidTaskParams, match=why):
        _params(program, **args).spec.dp_plan(_params(program, **args))


def test_noise_widens_the_field_and_reaches_the_kernel() -> None:
    exact, noisy = _params("mpc.sum"), _params("mpc.sum", epsilon="0.01")
    assert noisy.bit_length >= exact.bit_length
    ka = noisy.spec.kernel_args(noisy)
    assert ka["dp"]["releases"][0]["name"] == "sum" and ka["clip"]["hi"] == [120]
    assert "dp" not in exact.spec.kernel_args(exact)


# ------------------------------------------------------------------ the SQL query program

REGION = Column("region", "cat", 0, domain=("n", "s"))


def _query(sql: str, **dp_args: str):
    from dnode.scheduler.programs.query.build import query_params

    return query_params(sql, {"t": (AGE, REGION)}, {"t": list(OWNERS)}, dp=dp_args)


def test_a_noisy_query_declares_its_group_sizes_and_sums() -> None:
    from dnode.scheduler.programs.query.build import explain

    plan, params = _query(
        "SELECT region, COUNT(*), AVG(age) FROM t WHERE age >= 18 GROUP BY region",
        epsilon="1",
    )
    g = params.spec.guarantee(params)
    assert g is not None
    rel = {r["name"]: r for r in g["releases"]}
    assert rel["count"]["size"] == 2 and rel["count"]["sensitivity_l1"] == 2
    assert rel["stats"]["sensitivity_l1"] == 2 * 120  # one row leaves a group, joins another
    ka = params.spec.kernel_args(params)
    assert ka["clip"] == [[0, 0, 120]] and ka["dp"]["releases"][0]["name"] == "count"
    e = explain(params, plan, {"t": list(OWNERS)})
    assert e["dp"]["epsilon"] == "1" and "differential privacy" in e["reveals"][0]
    _, exact = _query("SELECT region, COUNT(*), AVG(age) FROM t GROUP BY region")
    assert exact.spec.guarantee(exact) is None and "dp" not in exact.spec.kernel_args(exact)


def test_a_noisy_query_reads_min_max_and_quantiles_off_one_histogram_per_column() -> None:
    """MIN, MAX and MEDIAN of one column share one release: groups x bins counts, L1 2 (one
    row leaves one (group, bin), joins another); no exact extreme or search reaches the kernel,
    and the quantile search's refusal of a private result no longer applies."""
    from dnode.scheduler.programs.query.build import explain

    plan, params = _query(
        "SELECT region, MIN(age), MAX(age), MEDIAN(age), AVG(age) FROM t GROUP BY region",
        epsilon="1", dp_bins="10",
    )  # fmt: skip
    g = params.spec.guarantee(params)
    assert g is not None
    rel = {r["name"]: (r["size"], r["sensitivity_l1"]) for r in g["releases"]}
    assert rel == {"count": (2, 2), "stats": (2, 2 * 120), "bins:age": (2 * 10, 2)}
    ka = params.spec.kernel_args(params)
    assert ka["min"] == ka["max"] == ka["quantile"] == []
    ((name, off, lo, hi, edges),) = ka["hist"]
    assert (name, off, lo, hi, len(edges)) == ("bins:age", 2, 0, 120, 11) and edges[-1] == 121
    assert params.spec.private_refusal(params) is None
    e = explain(params, plan, {"t": list(OWNERS)})
    assert any("noisy histogram of age" in r for r in e["reveals"])
    _, exact = _query("SELECT MEDIAN(age) FROM t")
    assert "hist" not in exact.spec.kernel_args(exact) or not exact.spec.kernel_args(exact)["hist"]


def test_a_query_refuses_dp_bins_without_dp() -> None:
    from dnode.scheduler.programs.query.errors import QueryError

    with pytest.raises(QueryError, match="--dp-bins needs --epsilon"):
        _query("SELECT MAX(age) FROM t", dp_bins="10")


def test_ml_programs_offer_dp_where_it_fits() -> None:
    """ml.ridge opens sufficient statistics: noised like mpc.covariance; k-means and logistic
    regression noise every iteration (tests/node/test_dp_ml.py); ml.predict / ml.infer return
    one class per row (a per-record output): refused, saying why."""
    from dnode.scheduler.programs import get_program

    for name in ("ml.predict", "ml.infer"):
        with pytest.raises(InvalidTaskParams, match="offers no differential privacy.*scored row"):
            get_program(name).check_args({"epsilon": "1"})
    for name in ("ml.kmeans", "ml.logreg"):
        assert get_program(name).check_args({"k": 2, "epsilon": "1"} if name == "ml.kmeans"
                                            else {"epsilon": "1"})["epsilon"] == "1"  # fmt: skip
    ridge = TaskParams("ml.ridge", OWNERS, columns=(AGE, INCOME), args={"epsilon": "1"})
    g = ridge.spec.guarantee(ridge)
    assert g is not None and [r["name"] for r in g["releases"]] == ["sum", "gram"]


def test_a_dp_task_is_never_re_executed() -> None:
    """A re-execution would open a second, differently noised release of the same statistics:
    budget nobody charged. Nodes do not join one (spec.reruns); the first result stands."""
    assert _params("mpc.mean").spec.reruns(_params("mpc.mean"))
    noisy = _params("mpc.mean", epsilon="1")
    assert not noisy.spec.reruns(noisy)


# ------------------------------------------------------------------ PSI and joins


def test_psi_cardinality_calibration_is_sensitivity_one() -> None:
    """One id changed in one owner's set moves the intersection size by at most 1: OpenDP's
    discrete Laplace scale for epsilon is 1 / epsilon; the guarantee names the relation."""
    ids = Column("id", "id", 0)
    params = TaskParams("psi.cardinality", OWNERS, columns=(ids,), args={"epsilon": "0.5"})
    plan = params.spec.dp_plan(params)
    assert plan is not None
    (n,) = plan.noises
    assert (n.release.name, n.release.size, n.release.sensitivity) == ("count", 1, 1)
    assert n.scale == pytest.approx(2.0, rel=1e-6) and plan.epsilon == pytest.approx(0.5)
    g = params.spec.guarantee(params)
    assert g is not None and "one id of one owner" in g["neighbours"] and "committee" in g["scope"]
    assert params.spec.kernel_args(params)["dp"]["releases"][0]["name"] == "count"
    exact = TaskParams("psi.cardinality", OWNERS, columns=(ids,))
    assert "dp" not in exact.spec.kernel_args(exact) and exact.spec.guarantee(exact) is None


def test_join_calibration_bounds_one_joined_row_in_and_one_out() -> None:
    """A changed row of one owner removes at most one joined row and adds at most one: size 1;
    a sum max(span, |bound|) per column; a sum of products max(span, largest |x_i x_j|)."""
    ids = Column("id", "id", 0)
    x = Column("x", "int", 0, Fraction(-10), Fraction(30))  # span 40, bound 30
    y = Column("y", "fixed", 1, Fraction(5), Fraction(20))  # encoded [50, 200]: span 150
    plan = {"tables": [["x"], ["y"]], "aggregates": [["count"], ["sum", "x"], ["corr", "x", "y"]]}
    params = TaskParams("query.join", OWNERS, columns=(ids, x, y),
                        args={"plan": plan, "rho": "0.5"})  # fmt: skip
    p = params.spec.dp_plan(params)
    assert p is not None
    rel = {n.release.name: n for n in p.noises}
    assert rel["count"].release.sensitivity == 1
    assert rel["sum"].release.sensitivity == 40 + 200  # x: span 40 > 30; y: |200| > 150
    # gram (x,x): max(900 - 0, 900); (x,y): corners -2000..6000 -> 8000; (y,y): 40000
    assert rel["gram"].release.sensitivity == 900 + 8000 + 40000
    assert p.rho == pytest.approx(0.5)
    for n in p.noises:  # zCDP split equally: rho/3 each, scale = sens / sqrt(2 rho_i)
        assert n.scale == pytest.approx(n.release.sensitivity / math.sqrt(2 * 0.5 / 3), rel=1e-4)
    ka = params.spec.kernel_args(params)
    assert ka["clip"] == [[0, -10, 30], [1, 50, 200]]


def test_dnode_query_over_a_join_takes_epsilon_and_says_what_the_committee_sees() -> None:
    from dnode.scheduler.programs.query.build import explain, query_params

    ids = Column("id", "id", 0)
    who = {"a": [OWNERS[0]], "b": [OWNERS[1]]}
    plan, params = query_params(
        "SELECT COUNT(*), AVG(a.age), CORR(a.age, b.income) FROM a JOIN b ON a.id = b.id",
        {"a": (ids, AGE), "b": (ids, INCOME)}, who, dp={"epsilon": "1"},
    )  # fmt: skip
    assert params.program == "query.join" and params.args["epsilon"] == "1"
    line = explain(params, plan, who)["reveals"][0]
    assert "one row of one owner changed" in line and "committee knows the exact join size" in line
