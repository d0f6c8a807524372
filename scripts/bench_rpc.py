#!/usr/bin/env python
"""Cost of a flaky RPC endpoint: N reads through the seeded chaos proxy at several fault rates.

For each rate, N ``eth_blockNumber`` calls go through ``ResilientHTTPProvider`` to the embedded
devnet behind ``tests/rpc_chaos_proxy.py`` (resets, 502s, lost replies, delays of 0.2-1.5 s).
Reports wall time, the proxy's fault counts, and the provider's retries and exhausted calls.

    python scripts/bench_rpc.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import machine_info  # noqa: E402

from dnode.contracts.client import connect, rpc_stats  # noqa: E402
from dnode.contracts.devnet import start_in_thread  # noqa: E402
from tests.rpc_chaos_proxy import ChaosProxy  # noqa: E402


def run(url: str, rate: float, n: int, seed: int) -> dict[str, object]:
    with ChaosProxy(url, fault_rate=rate, seed=seed).running() as proxy:
        w3 = connect(proxy.url)
        t = time.perf_counter()
        for _ in range(n):
            w3.eth.block_number  # noqa: B018
        elapsed = time.perf_counter() - t
    stats = rpc_stats(w3)
    assert stats is not None
    return {
        "fault_rate": rate,
        "calls": n,
        "seconds": round(elapsed, 3),
        "proxy": dict(proxy.counts),
        "retries": stats.retries,
        "exhausted": stats.exhausted,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    server, url = start_in_thread(port=0)
    try:
        rows = [run(url, rate, a.calls, a.seed) for rate in (0.0, 0.1, 0.3)]
    finally:
        server.shutdown()
    if a.json:
        print(json.dumps({"machine": machine_info(), "runs": rows}))
        return
    for r in rows:
        print(
            f"fault rate {r['fault_rate']:.1f}: {r['calls']} calls in {r['seconds']:.2f} s, "
            f"{r['retries']} retries, {r['exhausted']} exhausted, proxy {r['proxy']}"
        )


if __name__ == "__main__":
    main()
