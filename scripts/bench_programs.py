"""Cost of every table program's kernel: 3 real MPyC party processes on N rows, 3 owners.

Measures the MPC part of a task (party start, connection, the kernel, the opening): what a
node spends per program beyond the network's fixed overhead (scripts/bench_mpc.py measures
that). The table has two columns, ``a`` int in [0, 1000] and ``b`` fixed(2) in [0, 10000],
and a categorical column for the histogram; owners' rows are Shamir-shared exactly as
``dnode task contribute`` does. A run that would exceed ``--budget`` seconds (predicted
linearly from the previous size) is not run; its figure is then an extrapolation, marked
``"extrapolated": true``.

    python scripts/bench_programs.py --json                 # 10k and 1M rows
    python scripts/bench_programs.py --rows 1000 --program mpc.median

``--checks both`` runs every size twice, semi-honest (job "checks": false: MPyC's protocols as
is) and with the malicious-minority checks (the default: node.mpc.malicious, node.mpc.compare
for comparisons), and reports checked/semi-honest per size:

    python scripts/bench_programs.py --checks both --program mpc.max --program mpc.median \
        --rows 1000 --rows 10000 --json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the checkout: dnode
from bench_data import machine_info  # noqa: E402

from dnode.node.mpc.executor import MpcJob, free_port, run_party  # noqa: E402
from dnode.node.mpc.influence import table_witness, task_witness  # noqa: E402
from dnode.node.mpc.sharing import field_modulus, share  # noqa: E402
from dnode.scheduler.programs import Column, TaskParams, all_programs  # noqa: E402
from dnode.scheduler.programs.tables import Table  # noqa: E402

OWNERS = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
)
A = Column("a", "int", 0, Fraction(0), Fraction(1000))
B = Column("b", "fixed", 2, Fraction(0), Fraction(10_000))
R = Column("region", "cat", domain=("n", "s", "e", "w"))
SETUP: dict[str, tuple[tuple[Column, ...], dict[str, Any]]] = {
    "mpc.histogram": ((R,), {}),
    "mpc.quantiles": ((A,), {"q": "0.25,0.5,0.75"}),
    "mpc.covariance": ((A, B), {}),
    "mpc.correlation": ((A, B), {}),
}


def table(cols: tuple[Column, ...], rows: int, owner: int, seed: int) -> Table:
    rng = np.random.default_rng([seed, owner])
    data: list[tuple[int | str, ...]] = []
    for c in cols:
        if c.type == "cat":
            data.append(tuple(int(v) for v in rng.integers(0, len(c.domain), rows)))
        else:
            data.append(tuple(int(v) for v in rng.integers(c.enc_lo, c.enc_hi + 1, rows)))
    return Table(cols, tuple(data))


async def run_program(
    program: str, rows: int, seed: int, timeout: float, checks: bool = True
) -> dict[str, Any]:
    cols, args = SETUP.get(program, ((A,), {}))
    params = TaskParams(program, OWNERS, args=args, columns=cols, max_rows=max(rows, 1))
    spec = params.spec
    p = field_modulus(params.bit_length)
    sizes = [rows // 3 + (1 if i < rows % 3 else 0) for i in range(3)]
    t0 = time.perf_counter()
    enc = [spec.encode_owner(params, table(cols, sizes[i], i, seed)) for i in range(3)]
    w = task_witness(params)  # what owners append: their influence witness (checked in the MPC)
    shares = [share(e if w is None else [*e, *table_witness(e, w)], 3, 1, p) for e in enc]
    t_share = time.perf_counter() - t0
    parties = [("127.0.0.1", free_port()) for _ in range(3)]
    jobs = [
        MpcJob(
            0,
            program,
            spec.kernel,
            spec.kernel_args(params),
            spec.width(params),
            params.bit_length,
            i,
            parties,
            1,
            [s[i] for s in shares],
            witness=w if checks else None,
            checks=checks,
        )  # fmt: skip
        for i in range(3)
    ]
    out: list[Any] = [None] * 3
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        out[i] = await run_party(jobs[i], timeout=timeout)

    async with trio.open_nursery() as n:
        for i in range(3):
            n.start_soon(one, i)
    wall = time.perf_counter() - t0
    res = spec.finish(params, out[0].revealed, out[0].rows)
    return {
        "program": program,
        "rows": rows,
        "mpc_seconds": round(wall, 2),
        "owner_encode_share_seconds": round(t_share, 2),
        "bit_length": params.bit_length,
        "first_value": str(float(res.values[0])),
        "checks": checks,
        "extrapolated": False,
    }


def markdown(report: dict[str, Any]) -> str:
    """The program table of docs/protocol.md, from a --json report (and every spec)."""
    from dnode.cli.programs import describe

    cost: dict[tuple[str, int], str] = {}
    for r in report["results"]:
        if "mpc_seconds" in r:
            cost[(r["program"], r["rows"])] = (
                f"{r['mpc_seconds']:g}{'*' if r['extrapolated'] else ''}"
            )
    lines = [
        "| program | inputs | arguments | reveals | to whom | cost hint | 10k rows (s) "
        "| 1M rows (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in all_programs():
        d = describe(spec)
        args = ", ".join(f"`{a['name']}`" for a in d["args"]) or "-"
        lines.append(
            f"| `{d['name']}` | {d['inputs']} | {args} | {d['reveals']} | {d['revealed_to']} "
            f"| {d['cost']} "
            f"| {cost.get((d['name'], 10_000), '-')} | {cost.get((d['name'], 1_000_000), '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", help="rows in total (repeatable)")
    ap.add_argument("--program", action="append", help="program name (repeatable)")
    ap.add_argument("--budget", type=float, default=600.0, help="longest run in seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--checks",
        choices=("on", "off", "both"),
        default="on",
        help="malicious-minority checks (both: semi-honest and checked, with the ratio)",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the JSON report to this file")
    ap.add_argument("--table", type=Path, help="print the docs' program table from a --json file")
    a = ap.parse_args()
    if a.table:
        print(markdown(json.loads(a.table.read_text())))
        return
    sizes = sorted(a.rows or [10_000, 1_000_000])
    progs = a.program or [p.name for p in all_programs() if p.family == "stats"]
    modes = {"on": (True,), "off": (False,), "both": (False, True)}[a.checks]
    results = []
    for prog in progs:
        for checks in modes:
            last: dict[str, Any] | None = None
            for n in sizes:
                guess = last["mpc_seconds"] * n / last["rows"] if last else 0.0
                if last and guess > a.budget:
                    results.append({**last, "rows": n, "mpc_seconds": round(guess, 1),
                                    "extrapolated": True})  # fmt: skip
                    continue
                try:
                    last = trio.run(run_program, prog, n, a.seed, a.budget * 2, checks)
                except Exception as e:  # noqa: BLE001 - a failed size is reported, the rest run
                    results.append(
                        {"program": prog, "rows": n, "checks": checks, "error": str(e)[:200]}
                    )
                    break
                results.append(last)
                if a.out:
                    a.out.write_text(json.dumps({"results": results}, indent=1))
                if not a.json:
                    mode = "checked" if checks else "semi-honest"
                    print(f"{prog:<16} {n:>9} rows {mode:>11} {last['mpc_seconds']:>8.2f} s",
                          flush=True)  # fmt: skip
    if a.checks == "both":  # checked / semi-honest per (program, rows), measured runs only
        base = {
            (r["program"], r["rows"]): r
            for r in results
            if not r.get("checks") and "mpc_seconds" in r and not r["extrapolated"]
        }
        for r in results:
            b = base.get((r["program"], r["rows"]))
            if r.get("checks") and b and "mpc_seconds" in r and not r["extrapolated"]:
                r["checked_over_semi_honest"] = round(r["mpc_seconds"] / b["mpc_seconds"], 2)
    report = {"benchmark": "table programs: MPC kernel, 3 parties, 3 owners",
              "machine": machine_info(), "results": results}  # fmt: skip
    if a.out:
        a.out.write_text(json.dumps(report, indent=1))
    if a.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
