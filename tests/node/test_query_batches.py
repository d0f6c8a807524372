"""The query kernel over row batches (TableSession.batches, one Guard epoch per batch) in real
MPyC parties: answers across batch boundaries equal DuckDB's; a party that deviates only in a
later batch is caught at that batch's check."""

from __future__ import annotations

import dataclasses
import random

import pytest
import trio

from dnode.node.errors import MpcError
from dnode.node.mpc.executor import MpcJob, MpcResult, SubprocessExecutor
from tests.node.test_query_mpc import _close, _jobs, _vectors
from tests.programs.query_fixture import duckdb_answer, ours_as_rows, params_for, random_rows

BATCH = 4  # owners of 5, 3 and 6 rows: batches (0: 4 + 1), (1: 3), (2: 4 + 2)
SIZES = (5, 3, 6)

# level 2 influence (CORR: the owners' Gram matrices accumulated over the batches) and MIN/MAX
# (the extremes of every batch, then of the batches' extremes)
SQL_GRAM = (
    "SELECT tier, COUNT(*), SUM(income), AVG(age), VAR_SAMP(income), MIN(age), MAX(income), "
    "CORR(age, income) FROM customers WHERE age >= 30 OR region = 'S' GROUP BY tier"
)
# level 1 (sums of squares per column accumulated over the batches)
SQL_SQ = "SELECT region, COUNT(*), SUM(age), STDDEV_SAMP(income) FROM customers GROUP BY region"
# no GROUP BY, no WHERE: one group of every row
SQL_ALL = "SELECT COUNT(*), SUM(income), MIN(age) FROM customers"


def _batched(jobs: list[MpcJob], size: int = BATCH) -> list[MpcJob]:
    return [dataclasses.replace(j, args={**j.args, "batch_rows": size}) for j in jobs]


async def _run(jobs, evil=None, mode="", timeout=180.0):
    out: list[object] = [None] * len(jobs)

    async def one(i):
        ex = SubprocessExecutor()
        if i == evil:
            ex = SubprocessExecutor(party_args=("-m", "tests.node.evil_party", mode, "600"))
        try:
            out[i] = await ex.run_party(jobs[i], timeout=timeout)
        except MpcError as e:
            out[i] = e

    async with trio.open_nursery() as n:
        for i in range(len(jobs)):
            n.start_soon(one, i)
    return out


@pytest.mark.parametrize(
    ("sql", "checks"), [(SQL_GRAM, True), (SQL_SQ, True), (SQL_ALL, True), (SQL_GRAM, False)]
)
def test_batches_match_duckdb(sql, checks):
    rng = random.Random(21)
    owners = [random_rows(rng, n) for n in SIZES]
    params = params_for(sql)
    jobs = _batched(_jobs(params, _vectors(params, owners, checks=checks), checks=checks))
    res = trio.run(_run, jobs)
    assert all(isinstance(r, MpcResult) for r in res), res
    assert res[0].revealed == res[1].revealed == res[2].revealed
    got = params.spec.finish(params, res[0].revealed, res[0].rows).values
    theirs = duckdb_answer(sql, owners)
    assert theirs
    _close(ours_as_rows(params, got), theirs)


@pytest.mark.parametrize("epoch", [2, 4])
def test_cheat_in_a_later_batch_aborts(epoch):
    """Party 1 re-shares wrong product shares only from the Guard's epoch ``epoch`` on, i.e.
    after ``epoch`` batches went through their check: the check of a later batch catches
    it and no party outputs anything."""
    rng = random.Random(22)
    owners = [random_rows(rng, n) for n in SIZES]
    params = params_for(SQL_GRAM)
    jobs = _batched(_jobs(params, _vectors(params, owners, checks=True), checks=True))
    res = trio.run(_run, jobs, 1, f"reshare-from-{epoch}")
    honest = [res[0], res[2]]
    assert all(isinstance(r, MpcError) for r in honest), res
    assert all("multiplication" in str(r) for r in honest), res
