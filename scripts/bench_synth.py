"""DP synthetic data across two owners: dnode's ``synth.mst`` against MST run centrally on the
plaintext joined table (the enclave of the DP synthetic-data workshop).

Data (fixed seed): owner A holds ``id, age, education``, owner B ``id, salary, hours`` for
partly the same people (ids overlap by 80%); salary grows with age and education, hours weakly
with age. Both sides bin the same way (the public schema's declared ranges, 8 equal bins per
numeric column: data-independent).

* dnode: owners encode and Shamir-share exactly as ``dnode task contribute`` does; the
  ``synth.mst`` kernel runs in 3 real MPyC party processes (malicious-minority checks on, as a
  node runs it; noise drawn jointly in the MPC); its sealed output is opened with the
  requester's key; the requester fits and samples with ``mbi`` (scheduler.programs.synth.model).
* central MST: the reference mechanism of McKenna et al. (private-pgm ``mechanisms/mst.py``,
  ported to ``mbi`` 2.0 here without its domain compression): Gaussian noise, the budget in
  thirds, exponential-mechanism edge selection, (epsilon, delta = 1e-9)-DP through zCDP (the
  conversion by OpenDP). ``central`` is calibrated for dnode's neighbouring relation (one row
  changed: the target compares these); ``central_add_remove`` as the reference is (one row
  added or removed: a weaker guarantee at the same epsilon, shown for reference).

Reported per epsilon: the average over every column pair of the TVD between the synthetic
data's 2-way marginal and the true joined data's, for each (mean over ``--runs`` seeds), the
ratio dnode / central (target <= 1.25) and the wall times.

    nice -n 10 python scripts/bench_synth.py --json
    nice -n 10 python scripts/bench_synth.py --rows 2000 --eps 1 --runs 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the checkout: dnode
from bench_data import machine_info  # noqa: E402

from dnode.node.mpc.delivery import Bundle, open_bundle, result_keypair  # noqa: E402
from dnode.node.mpc.executor import MpcJob, free_port, run_party  # noqa: E402
from dnode.node.mpc.sharing import share, task_modulus  # noqa: E402
from dnode.scheduler.programs import Column, TaskParams  # noqa: E402
from dnode.scheduler.programs.synth import model  # noqa: E402
from dnode.scheduler.programs.synth.spec import SynthMst, unpack  # noqa: E402

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
)
M, T = 3, 1
DELTA = 1e-9
BINS = 8
COLUMNS = (
    Column("id", "id"),
    Column("age", "int", 0, Fraction(18), Fraction(81)),
    Column("education", "cat", domain=("none", "school", "college", "phd")),
    Column("salary", "int", 0, Fraction(0), Fraction(159_999)),
    Column("hours", "int", 0, Fraction(0), Fraction(79)),
)
TABLES = [["age", "education"], ["salary", "hours"]]
REQUESTER_KEY = bytes(range(1, 33))  # a fixed requester account key (bench only)


def people(n: int, seed: int) -> dict[str, np.ndarray]:
    """n people, every column; ids p0..p(n-1)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 82, n)
    edu = rng.choice(4, n, p=[0.15, 0.45, 0.3, 0.1])
    base = 15_000 + 900 * (age - 18) + 18_000 * edu
    salary = np.clip(base + rng.normal(0, 12_000, n), 0, 159_999).astype(int)
    hours = np.clip(np.round(45 - 0.15 * (age - 18) + rng.normal(0, 8, n)), 0, 79).astype(int)
    return {"age": age, "education": edu, "salary": salary, "hours": hours}


def owner_files(d: Path, n: int, seed: int) -> tuple[list[Path], dict[str, np.ndarray]]:
    """A holds people 0..n-1 (ages, education), B people n/5..6n/5-1 (salaries, hours): the
    join is the 4n/5 people both hold. Returns the files and the true joined columns."""
    total = n + n // 5
    p = people(total, seed)
    edu = COLUMNS[2].domain
    a = d / "a.csv"
    b = d / "b.csv"
    with a.open("w") as f:
        f.write("id,age,education\n")
        for i in range(0, n):
            f.write(f"p{i},{p['age'][i]},{edu[p['education'][i]]}\n")
    with b.open("w") as f:
        f.write("id,salary,hours\n")
        for i in range(n // 5, total):
            f.write(f"p{i},{p['salary'][i]},{p['hours'][i]}\n")
    both = slice(n // 5, n)
    return [a, b], {k: v[both] for k, v in p.items()}


def params_for(eps: float, n: int) -> TaskParams:
    _, public = result_keypair(REQUESTER_KEY)
    return TaskParams(
        "synth.mst", OWNERS, columns=COLUMNS, max_rows=2 * n + 2, result_key=public,
        args={"epsilon": str(eps), "delta": str(DELTA), "bins": BINS,
              "layout": {"mode": "vertical", "tables": TABLES}},
    )  # fmt: skip


def true_bins(params: TaskParams, joined: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    spec = params.spec
    assert isinstance(spec, SynthMst)
    out = {}
    for b in spec.binned(params):
        c = b.column
        raw = joined[c.name]
        out[c.name] = np.array([b.bin_of(int(v) * 10**c.scale) for v in raw], dtype=int)
    return out


async def _parties(params: TaskParams, shares: list[list[list[int]]], timeout: float) -> list:
    ports = [("127.0.0.1", free_port()) for _ in range(M)]
    jobs = [MpcJob.for_task(params, i, ports, T, [s[i] for s in shares]) for i in range(M)]
    out: list[Any] = [None] * M

    async def one(i: int) -> None:
        out[i] = await run_party(jobs[i], timeout=timeout)

    async with trio.open_nursery() as nursery:
        for i in range(M):
            nursery.start_soon(one, i)
    return out


def dnode_run(params: TaskParams, files: list[Path], rows: int, seed: int, timeout: float
              ) -> tuple[dict[str, np.ndarray], dict[str, float]]:  # fmt: skip
    t0 = time.perf_counter()
    p = task_modulus(params)
    shares = [share(params.encode_table(f, OWNERS[k]), M, T, p) for k, f in enumerate(files)]
    t1 = time.perf_counter()
    out = trio.run(_parties, params, shares, timeout)
    t2 = time.perf_counter()
    sk, _ = result_keypair(REQUESTER_KEY)
    revealed, n = open_bundle(sk, Bundle.from_bytes(out[0].bundle))
    spec = params.spec
    assert isinstance(spec, SynthMst)
    res = spec.finish(params, revealed, n)
    meas = unpack(spec, params, res.values)
    model_ = model.fit(meas)
    bins = model.sample_bins(model_, rows, seed)
    t3 = time.perf_counter()
    return bins, {"owners_s": t1 - t0, "mpc_s": t2 - t1, "fit_sample_s": t3 - t2,
                  "seconds": t3 - t0}  # fmt: skip


# ---------------------------------------------------------------- central MST (reference)


def rho_for(eps: float, delta: float) -> float:
    """The zCDP rho whose (eps, delta)-DP conversion meets the target (OpenDP's map)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")

    def meas(scale: float) -> Any:
        g = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
                               scale)  # fmt: skip
        return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(g), delta)

    scale = dp.binary_search_param(meas, d_in=1.0, d_out=(eps, delta), T=float)
    return 1.0 / (2 * float(scale) ** 2)


def central_mst(data: dict[str, np.ndarray], sizes: dict[str, int], eps: float, rows: int,
                seed: int, change_one: bool) -> dict[str, np.ndarray]:  # fmt: skip
    """private-pgm's mechanisms/mst.py on mbi 2.0 (no domain compression). ``change_one``:
    calibrated for one row changed, dnode's neighbouring relation (a marginal's L2
    sensitivity sqrt(2), a score's 2); else for one row added or removed, as the reference
    (sensitivity 1): the same epsilon then protects less."""
    mbi = model._mbi()
    rng = np.random.default_rng(seed)
    names = list(sizes)
    domain = mbi.Domain(names, [sizes[c] for c in names])
    rho = rho_for(eps, DELTA)
    sens = 2.0 if change_one else 1.0  # a score's sensitivity
    sigma = math.sqrt(3 / (2 * rho)) * (math.sqrt(2) if change_one else 1.0)

    def measure(cliques: list[tuple[str, ...]]) -> list[Any]:
        w = 1 / math.sqrt(len(cliques))  # weights normalized: sum of squares 1
        out = []
        for cl in cliques:
            x = model.marginal(data, sizes, *cl).reshape(-1).astype(float)
            y = x + rng.normal(0, sigma / w, x.size)
            out.append(mbi.LinearMeasurement(y, cl, sigma / w))
        return out

    log1 = measure([(c,) for c in names])
    est = mbi.estimation.MirrorDescent().estimate(domain, log1, iters=1000)
    cand = list(itertools.combinations(names, 2))
    score = {}
    for a, b in cand:
        xhat = np.asarray(est.project((a, b)).datavector()).reshape(-1)
        x = model.marginal(data, sizes, a, b).reshape(-1)
        score[a, b] = float(np.abs(x - xhat).sum())
    parent = {c: c for c in names}

    def find(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    e_round = math.sqrt(8 * (rho / 3) / (len(names) - 1))
    tree = []
    for _ in range(len(names) - 1):
        live = [e for e in cand if find(e[0]) != find(e[1])]
        q = np.array([score[e] for e in live])
        s = 0.5 * e_round * q / sens  # non-monotonic: coefficient 1/2
        p = np.exp(s - s.max())
        e = live[rng.choice(len(live), p=p / p.sum())]
        tree.append(e)
        parent[find(e[0])] = find(e[1])
    log2 = measure(tree)
    fitted = mbi.estimation.MirrorDescent().estimate(domain, log1 + log2, iters=model.FIT_ITERS)
    return model.sample_bins(fitted, rows, seed)


def avg_tvd(truth: dict[str, np.ndarray], syn: dict[str, np.ndarray], sizes: dict[str, int]
            ) -> float:  # fmt: skip
    names = list(sizes)
    vals = [
        model.tvd(model.marginal(truth, sizes, a, b), model.marginal(syn, sizes, a, b))
        for a, b in itertools.combinations(names, 2)
    ]
    return float(np.mean(vals))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--rows", type=int, default=5000, help="rows per owner (the join: 80%%)")
    ap.add_argument("--eps", type=float, action="append", help="epsilon (repeatable)")
    ap.add_argument("--runs", type=int, default=3, help="seeds per epsilon and side")
    ap.add_argument("--timeout", type=float, default=1800)
    a = ap.parse_args()
    epsilons = a.eps or [0.5, 1.0, 4.0]
    results = []
    with tempfile.TemporaryDirectory() as d:
        files, joined = owner_files(Path(d), a.rows, seed=7)
        n_join = len(joined["age"])
        for eps in epsilons:
            params = params_for(eps, a.rows)
            spec = params.spec
            assert isinstance(spec, SynthMst)
            sizes = {b.column.name: b.k for b in spec.binned(params)}
            truth = true_bins(params, joined)
            ours, theirs, ref, t_ours, t_theirs = [], [], [], [], []
            for run in range(a.runs):
                syn, times = dnode_run(params, files, n_join, seed=run, timeout=a.timeout)
                ours.append(avg_tvd(truth, syn, sizes))
                t_ours.append(times)
                t0 = time.perf_counter()
                cen = central_mst(truth, sizes, eps, n_join, seed=run, change_one=True)
                t_theirs.append(time.perf_counter() - t0)
                theirs.append(avg_tvd(truth, cen, sizes))
                cen = central_mst(truth, sizes, eps, n_join, seed=run, change_one=False)
                ref.append(avg_tvd(truth, cen, sizes))
                print(json.dumps({"epsilon": eps, "run": run, "dnode": round(ours[-1], 4),
                                  "central": round(theirs[-1], 4),
                                  "central_add_remove": round(ref[-1], 4),
                                  "dnode_seconds": round(times["seconds"], 1)}),
                      file=sys.stderr, flush=True)  # fmt: skip
            r = {
                "epsilon": eps,
                "delta": DELTA,
                "dnode_avg_2way_tvd": round(float(np.mean(ours)), 4),
                "central_mst_avg_2way_tvd": round(float(np.mean(theirs)), 4),
                "ratio": round(float(np.mean(ours) / np.mean(theirs)), 3),
                "target_ratio": 1.25,
                "central_add_remove_avg_2way_tvd": round(float(np.mean(ref)), 4),
                "ratio_vs_add_remove": round(float(np.mean(ours) / np.mean(ref)), 3),
                "dnode_runs": [round(x, 4) for x in ours],
                "central_runs": [round(x, 4) for x in theirs],
                "central_add_remove_runs": [round(x, 4) for x in ref],
                "dnode_seconds": round(float(np.mean([t["seconds"] for t in t_ours])), 2),
                "dnode_mpc_seconds": round(float(np.mean([t["mpc_s"] for t in t_ours])), 2),
                "dnode_fit_sample_seconds": round(
                    float(np.mean([t["fit_sample_s"] for t in t_ours])), 2
                ),
                "central_seconds": round(float(np.mean(t_theirs)), 2),
            }
            results.append(r)
            print(json.dumps(r), file=sys.stderr if a.json else sys.stdout, flush=True)
    out = {
        "benchmark": "synth",
        "rows_per_owner": a.rows,
        "joined_rows": n_join,
        "columns": {"owner A": TABLES[0], "owner B": TABLES[1]},
        "bins": BINS,
        "parties": M,
        "runs": a.runs,
        "results": results,
        "machine": machine_info(),
    }
    print(json.dumps(out, indent=None if not a.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
