"""Bare MPyC baseline for scripts/bench_mpc.py: mean and variance of N values, 3 parties.

Run by bench_mpc.py as ``python scripts/mpc_bare.py -M3 -I i -P host:port ... --no-log``
with BENCH_N and BENCH_SEED in the environment. Party i is data owner i: it secret-shares
its own third of the data with ``mpc.input``, exactly as one would hand-run MPyC; then the
parties compute the same thing dnode's mpc.variance computes (sum and sum of squares of a
secint(64) array, one secure elementwise product) and open only those two numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from bench_data import owner_values
from mpyc.runtime import mpc


async def main() -> None:
    n, seed = int(os.environ["BENCH_N"]), int(os.environ.get("BENCH_SEED", "1"))
    secint = mpc.SecInt(64)
    t0 = time.perf_counter()
    await mpc.start()
    t_connected = time.perf_counter()
    me = mpc.pid
    sizes = [n // 3 + (1 if j < n % 3 else 0) for j in range(3)]
    arrays = []
    for j in range(3):
        mine = np.array(owner_values(n, seed, j) if j == me else [0] * sizes[j], dtype=object)
        arrays.append(mpc.input(secint.array(mine), senders=j))
    x = mpc.np_concatenate(arrays)
    total = mpc.np_sum(x)
    sumsq = mpc.np_sum(x * x)
    s1, s2 = await mpc.output([total, sumsq])
    t_done = time.perf_counter()
    await mpc.shutdown()
    if me == 0:
        print(
            json.dumps(
                {
                    "sum": int(s1),
                    "sum_sq": int(s2),
                    "count": n,
                    "connect_s": t_connected - t0,
                    "compute_s": t_done - t_connected,
                }
            )
        )
        sys.stdout.flush()


if __name__ == "__main__":
    mpc.run(main())
