"""Differential privacy for psi.cardinality and query.join through real MPyC parties (three
processes, malicious-minority checks on): the noise is sampled inside the MPC, the opened
values sit within the expected error of the exact ones (DuckDB on the plaintext) and are not
the exact ones; the join clips out-of-range values and counts a duplicated id once per owner.

Real parties draw their PRSS keys at random, so the noise differs per run: "not the exact
value" is asserted where a release is wide enough for P(Z = 0) to be negligible (< 1e-4), or
over two runs (the cardinality: P(Z = 0) = 1e-3 per run at scale 1000)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import trio

from dnode.node.mpc import sharing as S
from dnode.node.mpc.executor import MpcJob, MpcResult, free_port
from dnode.scheduler.programs import TaskParams
from tests.node.test_psi_mpc import ADDRS, _cols, _csv, _ids, _jobs, _run_all

A_IDS = [f"id{i}" for i in range(0, 60)]
B_IDS = [f"id{i}" for i in range(30, 80)]


def _forged_jobs(params: TaskParams, files: list[Path], row: int, value: int) -> list[MpcJob]:
    """Owner 0 shares ``value`` as its first column at ``row`` (the owner-side range check
    bypassed: a cheating owner writes its own shares)."""
    enc = [params.encode_table(f, ADDRS[k]) for k, f in enumerate(files)]
    w = params.spec.width(params)
    enc[0][w * (row + 1) + 2] = value  # after the header row: [point hi, point lo, x, y]
    p = S.task_modulus(params)
    sh = [S.share(e, 3, 1, p) for e in enc]
    ports = [("127.0.0.1", free_port()) for _ in range(3)]
    return [MpcJob.for_task(params, i, ports, 1, [s[i] for s in sh], 1) for i in range(3)]


def _run(params: TaskParams, files: list[Path], jobs: list[MpcJob] | None = None) -> dict:
    res = trio.run(_run_all, jobs or _jobs(params, files))
    assert all(isinstance(r, MpcResult) for r in res), res
    assert all(r.revealed == res[0].revealed for r in res)  # type: ignore[attr-defined]
    return res[0].revealed  # type: ignore[attr-defined]


def test_noisy_cardinality_is_near_the_exact_size_and_not_it(tmp_path: Path) -> None:
    params = TaskParams("psi.cardinality", ADDRS[:2], columns=_cols("id:id"),
                        args={"epsilon": "0.001"})  # fmt: skip
    plan = params.spec.dp_plan(params)
    assert plan is not None
    scale = plan.noises[0].scale  # 1 / epsilon = 1000
    files = [_ids(tmp_path, "a", A_IDS), _ids(tmp_path, "b", B_IDS)]
    exact = 30
    first = _run(params, files)
    assert set(first) == {"count"}
    got = [first["count"][0]]
    if got[0] == exact:  # P = 1e-3: a second, independent draw
        got.append(_run(params, files)["count"][0])
    assert got[-1] != exact and abs(got[-1] - exact) < 20 * scale, (got, scale)
    out = params.spec.finish(params, {"count": got[-1:]}, 0)
    assert out.values[0] == max(0, got[-1])  # a negative noisy size is clamped at 0
    g = params.spec.guarantee(params)
    assert g is not None and "one id of one owner's set" in g["neighbours"]


def test_noisy_join_clips_dedups_and_noises_every_opened_value(tmp_path: Path) -> None:
    plan = {
        "tables": [["x"], ["y"]],
        "aggregates": [["count"], ["sum", "x"], ["avg", "y"], ["corr", "x", "y"]],
    }
    params = TaskParams(
        "query.join", ADDRS[:2], args={"plan": plan, "epsilon": "60"},
        columns=_cols("id:id", "x:int:-1000:1000", "y:int:0:1000"),
    )  # fmt: skip
    a_rows = [[i, (n * 37) % 1500 - 500] for n, i in enumerate(A_IDS)]
    b_rows = [[i, (n * 53) % 1000] for n, i in enumerate(B_IDS)]
    b_rows.append(["id31", 999])  # a duplicated id: only its first row counts under DP
    files = [_csv(tmp_path / "a.csv", ["id", "x"], a_rows),
             _csv(tmp_path / "b.csv", ["id", "y"], b_rows)]  # fmt: skip
    # owner 0 shares 5000 for id40, outside the declared [-1000, 1000]: counts as 1000
    revealed = _run(params, files, _forged_jobs(params, files, 40, 5000))
    db = duckdb.connect()
    a, b = files
    ref = (  # DP keeps the first row of a duplicated id: id31's second row (999) is not
        "(SELECT id, CASE WHEN id = 'id40' THEN 1000 ELSE x::BIGINT END AS x "
        f"FROM read_csv('{a}', all_varchar=true)) a JOIN (SELECT id, y::BIGINT AS y FROM "
        f"read_csv('{b}', all_varchar=true) WHERE NOT (id = 'id31' AND y = '999')) b "
        "ON a.id = b.id"
    )
    n, sx, sy, sxx, sxy, syy = db.execute(
        f"SELECT count(*), sum(x), sum(y), sum(x*x), sum(x*y), sum(y*y) FROM {ref}"
    ).fetchone()
    assert n == 30
    p = params.spec.dp_plan(params)
    assert p is not None
    scale = {z.release.name: z.scale for z in p.noises}
    exact = {"count": [n], "sum": [sx, sy], "gram": [sxx, sxy, syy]}
    assert set(revealed) == set(exact)
    for name, want in exact.items():
        for got, w in zip(revealed[name], want, strict=True):
            assert abs(got - w) < 20 * scale[name], (name, got, w, scale[name])
            if scale[name] > 1000:  # P(Z = 0) < 1e-3 ... far less for the sums of products
                assert got != w, (name, got)
    # the raw (unclipped) value would move the sum of x by 4000: beyond the noise
    raw = sx - 1000 + 5000
    assert abs(revealed["sum"][0] - raw) > abs(raw - sx) - 20 * scale["sum"] > 0
    out = params.spec.finish(params, revealed, 0)
    assert -1 <= out.values[3] <= 1  # a noisy correlation is clamped to [-1, 1]
