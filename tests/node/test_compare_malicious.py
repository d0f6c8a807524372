"""Secure comparisons under the malicious-minority checks (issue 13): min, max, median,
quantiles and numeric histograms.

Real MPyC party processes (node.mpc.party) on jobs built from the program's spec; the
deviating party is tests/node/evil_party.py.  The jobs here carry no influence witness, so
the only products of a session are those of its comparisons: on the old kernel (MPyC's own
semi-honest comparison protocols) a party that adds an offset in its degree reductions made
every honest party output a wrong maximum or median and exit 0."""

from __future__ import annotations

from fractions import Fraction

import pytest
import trio

from dnode.node.errors import CheatingDetectedError
from dnode.node.mpc import influence
from dnode.node.mpc.executor import MpcResult
from dnode.node.mpc.influence import table_witness
from dnode.scheduler.programs import Column, TaskParams
from dnode.scheduler.programs.stats.spec import order_ranks
from tests.node.test_malicious import ADDRS, _jobs, _run

A = Column("a", "int", 0, Fraction(-1000), Fraction(1000))
#: per owner: values of column a
VALS = [[5, -3, 12, 640], [100], [-7, 0, 2, -999, 37]]
FLAT = sorted(v for o in VALS for v in o)


def _params(program: str, **args: object) -> TaskParams:
    return TaskParams(program, ADDRS, columns=(A,), args=args)


def _expected(program: str) -> dict[str, object]:
    import numpy as np

    n = len(FLAT)
    if program == "mpc.max":
        return {"extreme": [max(FLAT)]}
    if program == "mpc.min":
        return {"extreme": [min(FLAT)]}
    if program == "mpc.median":
        ks = order_ranks(n, ["0.5"])
        return {"ranks": ks, "order": [[FLAT[k - 1]] for k in ks]}
    if program == "mpc.histogram":
        h, _ = np.histogram(FLAT, bins=[-1000, -10, 0, 10, 500, 1000])
        return {"below": None, "hist": [int(v) for v in h]}
    raise AssertionError(program)


def _check(program: str, got: dict[str, object]) -> None:
    want = _expected(program)
    if program == "mpc.histogram":
        b = [int(v) for v in got["below"]]  # type: ignore[union-attr]
        assert [b[i + 1] - b[i] for i in range(len(b) - 1)] == want["hist"]
        return
    for k, v in want.items():
        assert got[k] == v, (program, got)


def _cjobs(program: str, vectors, *, witness: bool, checks: bool = True):
    params = _params(program, **_ARGS.get(program, {}))
    return _jobs(program, vectors, checks=checks, witness=witness, tid=31, params=params)


_ARGS: dict[str, dict[str, object]] = {
    "mpc.histogram": {"bins": ["-1000", "-10", "0", "10", "500", "1000"]},
    "mpc.quantiles": {"q": ["0.5", "1"]},
}


def _with_witness(program: str, vals):
    w = influence.task_witness(_params(program, **_ARGS.get(program, {})))
    assert w is not None
    return [[*o, *table_witness(o, w)] for o in vals]


# ------------------------------------------------------------------ honest runs


@pytest.mark.parametrize("program", ["mpc.max", "mpc.min", "mpc.median", "mpc.histogram"])
@pytest.mark.parametrize("checks", [True, False])
def test_comparison_programs_are_exact(program, checks):
    res = trio.run(_run, _cjobs(program, _with_witness(program, VALS), witness=True, checks=checks))
    assert all(isinstance(r, MpcResult) for r in res), res
    for r in res:
        _check(program, r.revealed)
    if checks:
        assert len({r.transcript for r in res}) == 1


# ------------------------------------------------------------------ the attack


@pytest.mark.parametrize("program", ["mpc.max", "mpc.min", "mpc.median", "mpc.histogram"])
def test_deviation_inside_comparisons_is_detected(program):
    """Party 2 adds an offset to every product share it re-shares; the only products are the
    comparisons' (no witness).  Honest parties must abort, never sign a wrong value."""
    res = trio.run(_run, _cjobs(program, VALS, witness=False), 2, "reshare", 600)
    for r in res[:2]:
        if isinstance(r, MpcResult):  # the old kernel: a wrong result, exit 0
            _check(program, r.revealed)
        assert isinstance(r, CheatingDetectedError), res
        assert "multiplication check failed" in str(r)


def test_deviation_inside_comparisons_is_detected_with_five_parties():
    res = trio.run(_run, _jobs("mpc.max", VALS, m=5, t=2, witness=False, tid=33,
                               params=_params("mpc.max")), 3, "reshare", 1)  # fmt: skip
    for r in res[:3] + res[4:]:
        assert isinstance(r, CheatingDetectedError) and "multiplication" in str(r), res


def test_wrong_share_of_a_masked_value_is_detected():
    """Party 0 adds 1 to its share of every value it opens outside the Guard's own checks
    (here: the random squares and masked values of the comparisons, then the bits)."""
    res = trio.run(_run, _cjobs("mpc.median", VALS, witness=False), 0, "output", 1)
    for r in res[1:]:
        assert isinstance(r, CheatingDetectedError) and "opening check failed" in str(r), res


# ------------------------------------------------------------------ out-of-range owners


def _forged(program: str, vals: list[int], legal: list[int]) -> list[list[int]]:
    """Owner 1 shares ``vals`` with the (valid) influence witness of ``legal``: the same
    row count and column sum, so the per-owner sum bounds pass."""
    assert sum(vals) == sum(legal) and len(vals) == len(legal)
    w = influence.task_witness(_params(program, **_ARGS.get(program, {})))
    vecs = _with_witness(program, VALS)
    vecs[1] = [*vals, *table_witness(legal, w)]
    return vecs


@pytest.mark.parametrize("program", ["mpc.max", "mpc.min", "mpc.median", "mpc.histogram"])
def test_owner_sharing_2_90_aborts_the_comparisons(program):
    """2**90 and -2**90 (sum 0, so the sum bounds hold): every comparison with them is out of
    its range; the range check aborts instead of returning a wrong order statistic."""
    vecs = _forged(program, [2**90, -(2**90)], [0, 0])
    params = _params(program, **_ARGS.get(program, {}))
    jobs = _jobs(program, vecs, witness=True, tid=32, params=params, bit_length=64)
    res = trio.run(_run, jobs)
    for r in res:
        assert isinstance(r, CheatingDetectedError), res
        assert "range check failed" in str(r)


@pytest.mark.parametrize("program,want", [("mpc.max", 1000), ("mpc.min", -1000)])
def test_value_beyond_the_declared_range_moves_the_extreme_only_to_the_bound(program, want):
    """1500 (or -1500) fits the comparison width: the result is clamped to the declared
    range (the spec's finish), exactly what the legal value 1000 (or -1000) would give."""
    vecs = _forged(program, [want * 3 // 2, -want // 2], [want, 0])
    res = trio.run(_run, _cjobs(program, vecs, witness=True))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert all(r.revealed["extreme"] == [want * 3 // 2] for r in res)  # opened unclamped
    spec = _params(program).spec
    out = spec.finish(_params(program), res[0].revealed, res[0].rows)
    assert list(out.values) == [Fraction(want)]


def test_median_counts_a_value_beyond_the_range_as_clamped_and_refuses_one_below():
    """Quantiles: each value is decomposed into bits(span + 1) bits above lo; 1040 fits
    (declared hi 1000): the result is the order statistic of the clamped data; -1001 does not:
    the session aborts."""
    vecs = _forged("mpc.quantiles", [1040, 1040, 1040, 0], [1000, 1000, 1000, 120])
    res = trio.run(_run, _cjobs("mpc.quantiles", vecs, witness=True))
    assert all(isinstance(r, MpcResult) for r in res), res
    data = sorted(v for v in [*VALS[0], 1000, 1000, 1000, 0, *VALS[2]])
    ks = order_ranks(len(data), ["0.5", "1"])
    assert len(ks) == 2 and data[ks[1] - 1] == 1000
    assert all(r.revealed["order"] == [[data[k - 1]] for k in ks] for r in res), (res, ks, data)
    res = trio.run(_run, _cjobs("mpc.median", _forged("mpc.median", [-1001, 1], [-1000, 0]),
                                witness=True))  # fmt: skip
    for r in res:
        assert isinstance(r, CheatingDetectedError) and "range check failed" in str(r), res
