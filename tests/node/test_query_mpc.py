"""The query kernel in real MPyC parties (separate processes), with and without the
malicious-minority checks: WHERE + GROUP BY + HAVING equal DuckDB's answer; attacks abort."""

from __future__ import annotations

import random

import pytest
import trio

from dnode.node.errors import MpcError
from dnode.node.mpc import influence
from dnode.node.mpc import sharing as S
from dnode.node.mpc.executor import MpcJob, MpcResult, SubprocessExecutor, free_port
from dnode.node.mpc.influence import table_witness
from tests.programs.query_fixture import (
    duckdb_answer,
    ours_as_rows,
    params_for,
    random_rows,
    table_of,
)


def _jobs(params, vectors, *, checks, m=3, t=1, tid=31):
    bl = params.bit_length
    sh = [S.share(v, m, t, S.field_modulus(bl)) for v in vectors]
    ports = [("127.0.0.1", free_port()) for _ in range(m)]
    w = influence.task_witness(params) if checks else None
    return [
        MpcJob.for_task(params, i, ports, t, [s[i] for s in sh], tid, checks=checks, witness=w)
        for i in range(m)
    ]


def _vectors(params, owners, *, checks):
    out = []
    for rows in owners:
        enc = params.spec.encode_owner(params, table_of(params, rows))
        w = influence.task_witness(params) if checks else None
        out.append([*enc, *table_witness(enc, w)] if w is not None else enc)
    return out


async def _run(jobs, timeout=120.0):
    out: list[object] = [None] * len(jobs)

    async def one(i):
        try:
            out[i] = await SubprocessExecutor().run_party(jobs[i], timeout=timeout)
        except MpcError as e:
            out[i] = e

    async with trio.open_nursery() as n:
        for i in range(len(jobs)):
            n.start_soon(one, i)
    return out


def _answer(params, res):
    assert all(isinstance(r, MpcResult) for r in res), res
    assert res[0].revealed == res[1].revealed == res[2].revealed
    return params.spec.finish(params, res[0].revealed, res[0].rows).values


def _close(ours, theirs):
    """Our {group: aggregates} against DuckDB's rows (group labels first); NULL -> 0."""
    assert set(ours) == {tuple(r[: len(next(iter(ours)))]) for r in theirs} or not theirs
    k = len(next(iter(ours)))
    for r in theirs:
        got = ours[tuple(r[:k])]
        for a, b in zip(got, r[k:], strict=True):
            assert abs(float(a) - float(b or 0)) <= 1e-6 * max(1.0, abs(float(b or 0))), (got, r)


SQL = (
    "SELECT tier, COUNT(*), SUM(income), VAR_SAMP(income), MIN(age), MAX(income), MEDIAN(age), "
    "CORR(age, income) FROM customers WHERE age >= 30 AND NOT region = 'S' OR income < 100 "
    "GROUP BY tier HAVING COUNT(*) > 1"
)


@pytest.mark.parametrize("checks", [False, True])
def test_grouped_where_having_matches_duckdb(checks):
    rng = random.Random(7)
    owners = [random_rows(rng, n) for n in (5, 3, 6)]
    params = params_for(SQL)
    res = trio.run(_run, _jobs(params, _vectors(params, owners, checks=checks), checks=checks))
    ours = ours_as_rows(params, _answer(params, res))
    theirs = duckdb_answer(SQL, owners)
    assert theirs, "the data should leave some group"
    _close(ours, theirs)


def test_bogus_one_hot_aborts_naming_the_owner():
    """Owner 1 shares region = (1, 1, -1) for a row: every entry within the declared |1| (its
    influence witness holds) and the row sums to 1, yet it counts the row in N and S and
    subtracts one from E. The one-hot check aborts the session before anything is opened."""
    rng = random.Random(8)
    owners = [random_rows(rng, n) for n in (3, 3, 3)]
    sql = "SELECT region, COUNT(*) FROM customers GROUP BY region"
    params = params_for(sql)
    vecs = _vectors(params, owners, checks=True)
    w = params.spec.width(params)
    enc = params.spec.encode_owner(params, table_of(params, owners[1]))
    enc[0:3] = [1, 1, -1]
    wit = influence.task_witness(params)
    vecs[1] = [*enc, *table_witness(enc, wit)]  # an honest witness: the bounds hold
    assert len(enc) % w == 0
    res = trio.run(_run, _jobs(params, vecs, checks=True))
    assert all(isinstance(r, MpcError) for r in res), res
    assert all("one-hot" in str(r) for r in res), res


def test_out_of_range_filtered_value_aborts():
    """An owner shares age = 10**9 (declared 18..90) in the WHERE column: the checked
    comparison aborts the session (nothing is opened)."""
    rng = random.Random(9)
    owners = [random_rows(rng, n) for n in (3, 3, 3)]
    sql = "SELECT COUNT(*) FROM customers WHERE age < 40"
    params = params_for(sql)
    vecs = _vectors(params, owners, checks=True)
    enc = params.spec.encode_owner(params, table_of(params, owners[2]))
    enc[0] = 10**9
    wit = influence.task_witness(params)
    vecs[2] = [*enc, *table_witness([40] * len(enc), wit)]
    res = trio.run(_run, _jobs(params, vecs, checks=True))
    assert all(isinstance(r, MpcError) for r in res), res


def test_private_result_larger_than_the_chain_holds():
    """A 24-value answer (3 regions x 2 tiers x 3 columns + sizes) only as a private result:
    no party opens anything; the requester's key reconstructs the statistics, equal to
    DuckDB's answer after finish."""
    import dataclasses

    from dnode.node.mpc.delivery import Bundle, open_bundle, result_keypair

    sk, pk = result_keypair(bytes(range(1, 33)))
    sql = (
        "SELECT region, tier, COUNT(*), SUM(income), MAX(age) FROM customers WHERE age < 60 "
        "GROUP BY region, tier"
    )
    params = params_for(sql, result_key=pk)
    rng = random.Random(11)
    owners = [random_rows(rng, n) for n in (6, 5, 7)]
    jobs = [dataclasses.replace(j, result_key=pk)
            for j in _jobs(params, _vectors(params, owners, checks=True), checks=True)]  # fmt: skip
    res = trio.run(_run, jobs)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert all(r.revealed == {} for r in res)  # the committee opened nothing
    (raw,) = {r.bundle for r in res}
    got, rows = open_bundle(sk, Bundle.from_bytes(raw))
    ours = ours_as_rows(params, params.spec.finish(params, got, rows).values)
    theirs = duckdb_answer(sql, owners)
    assert theirs
    _close(ours, theirs)
