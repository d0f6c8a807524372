"""Issue 13, finding 8 (policy): an MPC aggregate of too few owners or values is never computed."""

from __future__ import annotations

import pytest

from dnode.node.aggregation import (
    AggregationTooSmall,
    MinAggregation,
    declared,
    enforce,
    values_per_owner,
)
from dnode.node.errors import MpcError


class C:  # a contribution: only the number of this seat's shares matters
    def __init__(self, n: int) -> None:
        self.shares = tuple(range(n))


def test_a_single_owner_task_is_refused_by_default():
    with pytest.raises(AggregationTooSmall) as e:
        enforce(7, {}, {"0xa": C(5)})
    assert (e.value.owners, e.value.values) == (1, 5)
    assert "1/2 owners" in e.value.detail


def test_owners_without_values_do_not_count():
    with pytest.raises(AggregationTooSmall):
        enforce(7, None, {"0xa": C(5), "0xb": C(0)})
    enforce(7, None, {"0xa": C(5), "0xb": C(1)})


def test_declared_minimum_is_enforced():
    extra = MinAggregation(owners=2, values=10).to_extra()
    with pytest.raises(AggregationTooSmall):
        enforce(7, extra, {"0xa": C(4), "0xb": C(5)})
    enforce(7, extra, {"0xa": C(5), "0xb": C(5)})
    single = MinAggregation(owners=1, values=1).to_extra()
    enforce(7, single, {"0xa": C(1)})  # the requester explicitly allowed it


def test_defaults_leave_params_unchanged_and_bad_declarations_fail_closed():
    assert MinAggregation().to_extra() == {}
    assert declared({"min_aggregation": {"owners": 3}}) == MinAggregation(3, 3)
    for bad in ({"owners": 0}, {"owners": 3, "values": 2}, {"owners": "2"}, [2], {"x": 1}):
        with pytest.raises(MpcError):
            enforce(7, {"min_aggregation": bad}, {"0xa": C(9), "0xb": C(9), "0xc": C(9)})


def test_the_influence_witness_is_not_counted_as_values():
    """Regression: shares end with the owner's influence witness (~300 field elements); counted
    as values, 7 values passed a 20-value minimum and the task finalized (e2e test)."""
    from types import SimpleNamespace

    from dnode.node.mpc.influence import table_witness, task_witness
    from dnode.scheduler.programs import TaskParams

    params = TaskParams(program="mpc.sum", owners=("0x" + "1" * 40, "0x" + "2" * 40))
    w = task_witness(params)
    assert w is not None
    contributions = {
        "a": SimpleNamespace(shares=[1, 2, 3, *table_witness([1, 2, 3], w)]),
        "b": SimpleNamespace(shares=[4, 5, 6, 7, *table_witness([4, 5, 6, 7], w)]),
    }
    counts = values_per_owner(params, contributions)
    assert counts == {"a": 3, "b": 4}
    with pytest.raises(AggregationTooSmall, match="7/20 values"):
        enforce(1, {"min_aggregation": {"owners": 2, "values": 20}}, counts)


def test_values_are_cells_of_the_table_not_its_encoding():
    """rows x columns: a 2-column covariance row is 2 values, a one-hot histogram row is 1."""
    from fractions import Fraction
    from types import SimpleNamespace

    from dnode.node.mpc.influence import table_witness, task_witness
    from dnode.scheduler.programs import Column, TaskParams

    a = Column("a", "int", 0, Fraction(-9), Fraction(9))
    b = Column("b", "int", 0, Fraction(-9), Fraction(9))
    owners = ("0x" + "1" * 40, "0x" + "2" * 40)
    cov = TaskParams(program="mpc.covariance", owners=owners, columns=(a, b))
    w = task_witness(cov)
    assert w is not None
    rows = [1, 2, 3, 4, 5, 6]  # three rows of (a, b)
    counts = values_per_owner(cov, {"x": SimpleNamespace(shares=[*rows, *table_witness(rows, w)])})
    assert counts == {"x": 6}
    cat = Column("c", "cat", domain=("p", "q", "r"))
    hist = TaskParams(program="mpc.histogram", owners=owners, columns=(cat,))
    w = task_witness(hist)
    assert w is not None and w.width == 3
    onehot = [1, 0, 0, 0, 0, 1]  # two rows
    shares = [*onehot, *table_witness(onehot, w)]
    assert values_per_owner(hist, {"x": SimpleNamespace(shares=shares)}) == {"x": 2}
