"""What does differential privacy cost in the MPC? Exact vs noisy (--epsilon) statistics.

Three real party processes (node.mpc.party via node.mpc.executor on localhost, the
malicious-minority checks on, as nodes run them), on the same random table split across 3
owners: each program once exact and once with ``epsilon`` (the in-MPC clipping and discrete
Laplace sampling of node.engines.mpc.noise). Also the sampler alone: ``values`` noise values
of scale ``scale`` (``mpc.histogram`` over a categorical column with that many categories
releases that many noisy counts).

The programs DP reached later (issue 18, second pass) run with ``--programs``: the order
statistics (``mpc.median``: a noisy histogram of ``dp_bins`` bins), ``ml.kmeans`` (DPLloyd,
noisy sums and sizes per iteration), ``ml.logreg`` (noisy gradient and Hessian per Newton
step), ``psi.cardinality`` and ``query.join`` (two owners, the id sets overlapping by half;
owner-side blinding included in the wall time only as the encoding before the parties start).

    python scripts/bench_dp_noise.py --json
    python scripts/bench_dp_noise.py --rows 1000 --epsilon 1 --json
    python scripts/bench_dp_noise.py --rows 300 --programs median,kmeans,logreg,psi,join --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import trio

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the checkout: dnode

from dnode.node.mpc.executor import MpcJob, free_port, run_party  # noqa: E402
from dnode.node.mpc.sharing import share, task_modulus  # noqa: E402
from dnode.scheduler.programs import Column, TaskParams  # noqa: E402
from dnode.scheduler.programs.tables import Table  # noqa: E402

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
A = Column("a", "int", 0, Fraction(0), Fraction(1000))
B = Column("b", "fixed", 2, Fraction(0), Fraction(10_000))
ID = Column("id", "id", 0)
Y = Column("y", "int", 0, Fraction(0), Fraction(1))  # a 0/1 label (ml.logreg)


def cat(k: int) -> Column:
    return Column("c", "cat", domain=tuple(f"v{i}" for i in range(k)))


async def run(program: str, cols: tuple[Column, ...], args: dict[str, Any], rows: int,
              seed: int, checks: bool) -> dict[str, Any]:  # fmt: skip
    owners = OWNERS[:2] if program.startswith(("psi.", "query.join")) else OWNERS
    params = TaskParams(program, owners, args=args, columns=cols, max_rows=max(rows, 1))
    spec = params.spec
    rng = np.random.default_rng(seed)
    k = len(owners)
    sizes = [rows // k + (1 if i < rows % k else 0) for i in range(k)]
    enc = []
    if ID in cols:  # PSI / join: ids overlapping by half, each owner's table encoded by the spec
        for o, n in enumerate(sizes):
            mine = spec.owner_columns(params, o)
            data = tuple(
                tuple(f"id{i + o * n // 2}" for i in range(n)) if c.type == "id"
                else tuple(int(v) for v in rng.integers(c.enc_lo, c.enc_hi + 1, n))
                for c in mine
            )  # fmt: skip
            enc.append(spec.encode_owner(params, Table(mine, data)))
    for n in sizes if not enc else ():
        flat: list[int] = []
        data = [
            rng.integers(0, len(c.domain), n) if c.type == "cat"
            else rng.integers(c.enc_lo, c.enc_hi + 1, n)
            for c in cols
        ]  # fmt: skip
        for r in range(n):
            for c, d in zip(cols, data, strict=True):
                v = int(d[r])
                flat += [int(i == v) for i in range(len(c.domain))] if c.type == "cat" else [v]
        enc.append(flat)
    p = task_modulus(params)
    shares = [share(e, 3, 1, p) for e in enc]
    parties = [("127.0.0.1", free_port()) for _ in range(3)]
    jobs = [MpcJob.for_task(params, i, parties, 1, [s[i] for s in shares], checks=checks)
            for i in range(3)]  # fmt: skip
    out: list[Any] = [None] * 3
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        out[i] = await run_party(jobs[i], timeout=1800)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(one, i)
    wall = time.perf_counter() - t0
    g = spec.guarantee(params)
    return {
        "program": program,
        "rows": rows,
        "dp": args.get("epsilon"),
        "mpc_seconds": round(wall, 2),
        "bit_length": params.bit_length,
        "noisy_values": sum(r["size"] for r in g["releases"]) if g else 0,
        "coin_bits": spec.dp_plan(params).bits if g else 0,  # type: ignore[union-attr]
        "delta": g["delta"] if g else None,
        "checks": checks,
        "opened": {k: v[:4] for k, v in out[0].revealed.items() if isinstance(v, list)},
    }


JOIN_PLAN = {"tables": [["a"], ["b"]], "aggregates": [["count"], ["avg", "a"], ["corr", "a", "b"]]}
CASES: dict[str, Any] = {
    "mean": lambda a: ("mpc.mean", (A,), {}),
    "variance": lambda a: ("mpc.variance", (A, B), {}),
    "histogram": lambda a: ("mpc.histogram", (cat(a.categories),), {}),
    "median": lambda a: ("mpc.median", (A,), {"dp_bins": "32"}),
    "kmeans": lambda a: ("ml.kmeans", (A, B), {"k": 3, "iterations": 3, "seed": 1}),
    "logreg": lambda a: ("ml.logreg", (A, Y), {"iterations": 3}),
    "psi": lambda a: ("psi.cardinality", (ID,), {}),
    "join": lambda a: ("query.join", (ID, A, B), {"plan": JOIN_PLAN}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--epsilon", default="1")
    ap.add_argument("--categories", type=int, default=16, help="histogram: noisy counts")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--semi-honest", action="store_true", help="without the checks")
    ap.add_argument("--programs", default="mean,variance,histogram",
                    help=f"comma-separated, of {','.join(CASES)}")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cases = [CASES[n](a) for n in a.programs.split(",")]
    results = []
    for program, cols, args in cases:
        for eps in (None, a.epsilon):
            kw = dict(args) | ({"epsilon": eps} if eps else {})
            if not eps:  # the exact run takes no DP-only argument
                kw.pop("dp_bins", None)
            r = trio.run(run, program, cols, kw, a.rows, a.seed, not a.semi_honest)
            results.append(r)
            if not a.json:
                what = f"{program:<14} rows {a.rows:>7} dp {str(eps):>5}"
                print(f"{what}: {r['mpc_seconds']:>7.2f} s ({r['noisy_values']} noisy values, "
                      f"{r['coin_bits']}-bit coins)")  # fmt: skip
    if a.json:
        print(json.dumps({"results": results, "command": " ".join(sys.argv)}, indent=1))


if __name__ == "__main__":
    main()
