"""``synth.mst`` through real MPyC parties (3 processes, malicious-minority checks on, the noise
drawn jointly in the MPC), sealed to the requester: the joined (on id) marginals the requester
opens are the plaintext join's up to the noise, an id held twice is left out, the tree is a
spanning tree of the columns. Attack: an owner that shares a row that is not one-hot (a cell
counted twice) makes every honest party abort, naming it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import trio

from dnode.node.mpc import sharing as S
from dnode.node.mpc.delivery import Bundle, open_bundle
from dnode.node.mpc.executor import MpcJob, MpcResult, free_port
from dnode.scheduler.programs import TaskParams
from dnode.scheduler.programs.synth.spec import SynthMst, unpack
from tests.node.test_psi_mpc import ADDRS, PK, SK, _cols, _csv, _run_all

A = [[f"u{i}", (i * 7) % 10, ["red", "green", "blue"][i % 3]] for i in range(14)]
A.append(["u7", 9, "blue"])  # u7 twice at owner A: left out of the join
B = [[f"u{i}", (i * 13) % 50] for i in range(6, 20)]
COLS = _cols("id:id", "x:int:0:9", "c:cat:red|green|blue", "z:int:0:49")


def _params(eps: str = "100") -> TaskParams:
    return TaskParams(
        "synth.mst", ADDRS[:2], columns=COLS, result_key=PK, max_rows=64,
        args={"epsilon": eps, "bins": 5, "layout": {"mode": "vertical",
                                                    "tables": [["x", "c"], ["z"]]}},
    )  # fmt: skip


def _files(tmp: Path) -> list[Path]:
    return [_csv(tmp / "a.csv", ["id", "x", "c"], A), _csv(tmp / "b.csv", ["id", "z"], B)]


def _jobs(params: TaskParams, shares_per_owner: list[list[int]]) -> list[MpcJob]:
    p = S.task_modulus(params)
    sh = [S.share(v, 3, 1, p) for v in shares_per_owner]
    ports = [("127.0.0.1", free_port()) for _ in range(3)]
    return [MpcJob.for_task(params, i, ports, 1, [s[i] for s in sh], 1) for i in range(3)]


@pytest.mark.long  # ~40 s on 2 cores: the noise sampler's coins over the 256-bit PSI field
def test_vertical_marginals_match_the_plaintext_join(tmp_path: Path) -> None:
    params = _params()
    spec = params.spec
    assert isinstance(spec, SynthMst)
    files = _files(tmp_path)
    enc = [params.encode_table(f, ADDRS[k]) for k, f in enumerate(files)]
    res = trio.run(_run_all, _jobs(params, enc), 300.0)
    assert all(isinstance(r, MpcResult) for r in res), res
    r = res[0]
    assert isinstance(r, MpcResult) and r.revealed == {} and r.bundle is not None
    revealed, rows = open_bundle(SK, Bundle.from_bytes(r.bundle))
    m = unpack(spec, params, spec.finish(params, revealed, rows).values)
    # the plaintext inner join of u6..u13 (in both), without u7 (twice at owner A)
    first = {str(row[0]): row for row in A}
    zs = {str(i): int(z) for i, z in B}
    joined = [(first[i][1], first[i][2], zs[i]) for i in first if i in zs and i != "u7"]
    assert len(joined) == 7
    bins = spec.binned(params)
    codes = [
        [
            bins[0].bin_of(int(x)),
            bins[1].column.domain.index(str(c)),
            bins[2].bin_of(int(z)),
        ]
        for x, c, z in joined
    ]
    # epsilon 100: the noise is almost always 0, never beyond 2 in practice (P < 1e-7)
    for j, b in enumerate(bins):
        want = [sum(1 for row in codes if row[j] == k) for k in range(b.k)]
        assert all(abs(g - w) <= 2 for g, w in zip(m.one[j], want, strict=True)), (m.one, want)
    assert len(m.edges) == 2 and len({c for e in m.edges for c in e}) == 3  # spans 3 columns
    for (a, b), cells in zip(m.edges, m.two, strict=True):
        for ia, ib in itertools.product(range(bins[a].k), range(bins[b].k)):
            want = sum(1 for row in codes if row[a] == ia and row[b] == ib)
            assert abs(cells[ia][ib] - want) <= 2, (a, b, cells, want)
    assert len(m.scores) == 3


def test_attack_an_owner_sharing_a_row_that_is_not_one_hot_aborts(tmp_path: Path) -> None:
    params = _params("1")
    files = _files(tmp_path)
    enc = [params.encode_table(f, ADDRS[k]) for k, f in enumerate(files)]
    spec = params.spec
    assert isinstance(spec, SynthMst)
    w, z_at = spec.width(params), spec.offsets(params)[2]
    # owner B (index 1) puts 2 in the first bin of z on its first row (after its header row
    # and the row's two point halves): that person would count twice in every marginal of z
    enc[1][w + 2 + z_at] = 2
    res = trio.run(_run_all, _jobs(params, enc), 300.0)
    assert not any(isinstance(r, MpcResult) for r in res), res
    assert all("one-hot" in str(r) and "1" in str(r) for r in res), res


@pytest.mark.long  # ~30 s on 2 cores
def test_horizontal_union_of_owners_with_the_same_columns(tmp_path: Path) -> None:
    """Two owners hold the same columns about different people (UNION ALL): the opened 1-way
    and tree marginals are the union's, up to the noise (epsilon 100)."""
    cols = _cols("x:int:0:9", "c:cat:red|green|blue")
    params = TaskParams(
        "synth.mst", ADDRS[:2], columns=cols, result_key=PK, max_rows=64,
        args={"epsilon": "100", "bins": 2, "layout": {"mode": "horizontal"}},
    )  # fmt: skip
    spec = params.spec
    assert isinstance(spec, SynthMst)
    rows = [[[(i * 3) % 10, ["red", "green", "blue"][i % 3]] for i in range(k, k + 7)]
            for k in (0, 7)]  # fmt: skip
    files = [_csv(tmp_path / f"{k}.csv", ["x", "c"], r) for k, r in enumerate(rows)]
    enc = [params.encode_table(f, ADDRS[k]) for k, f in enumerate(files)]
    res = trio.run(_run_all, _jobs(params, enc), 300.0)
    r = res[0]
    assert isinstance(r, MpcResult) and r.bundle is not None, res
    revealed, n = open_bundle(SK, Bundle.from_bytes(r.bundle))
    m = unpack(spec, params, spec.finish(params, revealed, n).values)
    union = [row for rs in rows for row in rs]
    want_x = [sum(1 for x, _ in union if x < 5), sum(1 for x, _ in union if x >= 5)]
    want_c = [sum(1 for _, c in union if c == lab) for lab in ("red", "green", "blue")]
    assert all(abs(g - w) <= 2 for g, w in zip(m.one[0], want_x, strict=True)), m.one
    assert all(abs(g - w) <= 2 for g, w in zip(m.one[1], want_c, strict=True)), m.one
    assert m.edges == ((0, 1),)
    for ix, ic in itertools.product(range(2), range(3)):
        want = sum(1 for x, c in union if (x >= 5) == ix and c == ("red", "green", "blue")[ic])
        assert abs(m.two[0][ix][ic] - want) <= 2, m.two
