"""The PSI family through real MPyC parties (3 processes, malicious-minority checks on):
cardinality, intersection and labelled PSI sealed to the requester, JOIN ON id with
aggregates; every answer equals DuckDB's on the same plaintext. Attack: a seat that alters
its partials is caught (the parity check in the exponent) and no result is produced."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
import trio

from dnode.node.errors import MpcError
from dnode.node.mpc import sharing as S
from dnode.node.mpc.delivery import Bundle, open_bundle, result_keypair
from dnode.node.mpc.executor import MpcJob, MpcResult, SubprocessExecutor, free_port
from dnode.scheduler.programs import Column, TaskParams

ADDRS = (
    "0x1111111111111111111111111111111111111111",
    "0x2222222222222222222222222222222222222222",
    "0x3333333333333333333333333333333333333333",
)
SK, PK = result_keypair(b"\x07" * 32)

A_IDS = ["alice", "bob", "carol", "dave", "12345678901234567890123456789", "eve"]
B_IDS = ["bob", "zed", "12345678901234567890123456789", "alice", "yan"]
C_IDS = ["alice", "bob", "q", "12345678901234567890123456789"]


def _cols(*flags: str) -> tuple[Column, ...]:
    return tuple(Column.parse_flag(f) for f in flags)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _jobs(params: TaskParams, files: list[Path], m: int = 3, t: int = 1) -> list[MpcJob]:
    p = S.task_modulus(params)
    sh = [S.share(params.encode_table(f, ADDRS[k]), m, t, p) for k, f in enumerate(files)]
    ports = [("127.0.0.1", free_port()) for _ in range(m)]
    return [MpcJob.for_task(params, i, ports, t, [s[i] for s in sh], 1) for i in range(m)]


async def _run_all(
    jobs: list[MpcJob], timeout: float = 120.0, executors: dict | None = None
) -> list[object]:
    results: list[object] = [None] * len(jobs)

    async def one(i: int) -> None:
        try:
            ex = (executors or {}).get(i, SubprocessExecutor())
            results[i] = await ex.run_party(jobs[i], timeout=timeout)
        except MpcError as e:
            results[i] = e

    async with trio.open_nursery() as n:
        for i in range(len(jobs)):
            n.start_soon(one, i)
    return results


def _run(params: TaskParams, files: list[Path]) -> tuple[dict, int]:
    res = trio.run(_run_all, _jobs(params, files))
    assert all(isinstance(r, MpcResult) for r in res), res
    r = res[0]
    if params.result_key:
        assert r.revealed == {} and r.bundle is not None  # nothing opened to the committee
        return open_bundle(SK, Bundle.from_bytes(r.bundle))
    return r.revealed, r.rows


def _ids(tmp: Path, name: str, ids: list[str]) -> Path:
    return _csv(tmp / f"{name}.csv", ["id"], [[i] for i in ids])


def test_cardinality_of_three_owners(tmp_path: Path) -> None:
    params = TaskParams("psi.cardinality", ADDRS, columns=_cols("id:id"))
    files = [_ids(tmp_path, n, i) for n, i in (("a", A_IDS), ("b", B_IDS), ("c", C_IDS))]
    revealed, rows = _run(params, files)
    out = params.spec.finish(params, revealed, rows)
    db = duckdb.connect()
    want = db.execute(
        f"SELECT count(*) FROM (SELECT id FROM read_csv('{files[0]}', all_varchar=true) "
        f"INTERSECT SELECT id FROM read_csv('{files[1]}', all_varchar=true) "
        f"INTERSECT SELECT id FROM read_csv('{files[2]}', all_varchar=true))"
    ).fetchone()[0]
    assert out.values == (Fraction(want),) and want == 3


def test_intersection_sealed_to_the_requester(tmp_path: Path) -> None:
    params = TaskParams("psi.intersection", ADDRS[:2], columns=_cols("id:id"), result_key=PK)
    files = [_ids(tmp_path, "a", A_IDS), _ids(tmp_path, "b", B_IDS)]
    revealed, rows = _run(params, files)
    out = params.spec.finish(params, revealed, rows)
    mine = [i for i, b in zip(A_IDS, out.values, strict=True) if b == 1]
    want = (
        duckdb.connect()
        .execute(
            f"SELECT a.id FROM read_csv('{files[0]}', all_varchar=true) a "
            f"SEMI JOIN read_csv('{files[1]}', all_varchar=true) b ON a.id = b.id"
        )
        .fetchall()
    )
    assert sorted(mine) == sorted(r[0] for r in want)


def test_labelled_psi_sealed_to_the_requester(tmp_path: Path) -> None:
    params = TaskParams(
        "psi.label", ADDRS[:2], columns=_cols("id:id", "income:fixed:2:0:1000000"), result_key=PK
    )
    incomes = {i: f"{1000 + 17.25 * n:.2f}" for n, i in enumerate(B_IDS)}
    files = [
        _ids(tmp_path, "a", A_IDS),
        _csv(tmp_path / "b.csv", ["id", "income"], [[i, incomes[i]] for i in B_IDS]),
    ]
    revealed, rows = _run(params, files)
    out = params.spec.finish(params, revealed, rows).values
    got = {A_IDS[j]: out[2 * j + 1] for j in range(len(A_IDS)) if out[2 * j] == 1}
    want = (
        duckdb.connect()
        .execute(
            f"SELECT a.id, b.income FROM read_csv('{files[0]}', all_varchar=true) a "
            f"JOIN read_csv('{files[1]}', types={{'income': 'DECIMAL(12,2)'}}) b ON a.id = b.id"
        )
        .fetchall()
    )
    assert got == {i: Fraction(str(v)) for i, v in want}
    assert all(out[2 * j + 1] == 0 for j in range(len(A_IDS)) if out[2 * j] == 0)


JOIN_AGGS = [["count"], ["sum", "x"], ["avg", "y"], ["var_samp", "x"], ["stddev", "y"],
             ["corr", "x", "y"], ["covar_pop", "x", "y"], ["covar_samp", "y", "z"]]  # fmt: skip


def test_join_on_id_with_aggregates_over_both_owners(tmp_path: Path) -> None:
    plan = {"tables": [["x"], ["y", "z"]], "aggregates": JOIN_AGGS}
    params = TaskParams(
        "query.join", ADDRS[:2], args={"plan": plan},
        columns=_cols("id:id", "x:int:-1000:1000", "y:fixed:2:-100:100", "z:int:0:50"),
    )  # fmt: skip
    a_rows = [[i, (n * 37) % 200 - 50] for n, i in enumerate(A_IDS)]
    b_rows = [[i, f"{(n * 13) % 90 - 20.5:.2f}", n * 3] for n, i in enumerate(B_IDS)]
    b_rows.append(["alice", "7.25", 11])  # a duplicate id: both rows join
    files = [
        _csv(tmp_path / "a.csv", ["id", "x"], a_rows),
        _csv(tmp_path / "b.csv", ["id", "y", "z"], b_rows),
    ]
    revealed, rows = _run(params, files)
    out = params.spec.finish(params, revealed, rows).values
    sql = ", ".join(
        "count(*)" if a[0] == "count" else f"{a[0]}({', '.join(a[1:])})" for a in JOIN_AGGS
    )
    want = (
        duckdb.connect()
        .execute(
            f"SELECT {sql} FROM (SELECT id, x::BIGINT AS x FROM read_csv('{files[0]}', "
            f"all_varchar=true)) a JOIN (SELECT id, y::DECIMAL(12,2) AS y, z::BIGINT AS z FROM "
            f"read_csv('{files[1]}', all_varchar=true)) b ON a.id = b.id"
        )
        .fetchone()
    )
    assert out[0] == want[0] == 4  # alice (twice: a duplicate id on the right), bob, 1234...
    for got, ref in zip(out, want, strict=True):
        assert float(got) == pytest.approx(float(ref), rel=1e-12, abs=1e-12)


def test_attack_a_seat_altering_partials_is_detected(tmp_path: Path) -> None:
    """Party 1 shifts one of the partials it sends (tests/node/evil_psi.py): every honest
    party aborts with 'cheating detected', none produces a count."""
    params = TaskParams("psi.cardinality", ADDRS[:2], columns=_cols("id:id"))
    files = [_ids(tmp_path, "a", A_IDS), _ids(tmp_path, "b", B_IDS)]
    evil = SubprocessExecutor(party_args=("-m", "tests.node.evil_psi"))
    res = trio.run(_run_all, _jobs(params, files), 60.0, {1: evil})
    assert not any(isinstance(r, MpcResult) for r in res), res
    assert any("psi-partials" in str(r) for r in (res[0], res[2])), res
