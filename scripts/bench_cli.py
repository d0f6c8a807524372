#!/usr/bin/env python
"""Start-up time of the ``dnode`` CLI: median wall time of N fresh runs of each command line.

Each case runs in a new interpreter (``python -m dnode.cli``, this checkout on PYTHONPATH):
``dnode --help``, one subcommand's ``--help`` (``--sub``, default ``task``), the same
``--help`` with every command module loaded first (what the CLI cost before commands were
loaded on use) and, as the anchor, ``python -c pass`` (the interpreter alone).

    python scripts/bench_cli.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import machine_info  # noqa: E402

EAGER = (
    "import click; from dnode.cli.main import COMMANDS, cli, main; "
    "ctx = click.Context(cli); [cli.get_command(ctx, n) for n in COMMANDS]; main(['--help'])"
)


def timed(argv: list[str], runs: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return {
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--sub", default="task", help="subcommand whose --help is timed")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    py = sys.executable
    cases = {
        "python -c pass (anchor)": [py, "-c", "pass"],
        "dnode --help": [py, "-m", "dnode.cli", "--help"],
        f"dnode {a.sub} --help": [py, "-m", "dnode.cli", a.sub, "--help"],
        "dnode --help, all commands loaded (eager)": [py, "-c", EAGER],
    }
    rows = {name: timed(argv, a.runs) for name, argv in cases.items()}
    if a.json:
        print(json.dumps({"machine": machine_info(), "cases": rows}, indent=2))
    else:
        for name, r in rows.items():
            print(f"{name:45s} median {r['median_s']:.3f} s  (min {r['min_s']:.3f})")


if __name__ == "__main__":
    main()
