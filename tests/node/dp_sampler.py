"""The in-MPC discrete Laplace sampler in one MPyC party (for tests/node/test_dp_noise.py).

``python -m tests.node.dp_sampler --no-log`` reads ``{"scale", "bits", "n", "seed",
"checks"}`` (JSON) on stdin and prints the opened noise values (JSON). The PRSS keys are
derived from ``seed`` so a run is reproducible (a real party draws them at random)."""

from __future__ import annotations

import hashlib
import json
import sys


def main() -> None:
    job = json.loads(sys.stdin.read())
    from mpyc.runtime import mpc  # parses argv: run in a fresh interpreter

    from dnode.node.engines.mpc import noise
    from dnode.node.mpc.table import TableSession
    from dnode.scheduler.dp import coins

    thresholds, _ = coins(float(job["scale"]), int(job["bits"]))
    release = {"name": "z", "size": job["n"], "thresholds": list(thresholds)}
    dp = {"bits": job["bits"], "releases": [release]}

    async def run() -> list[int]:
        await mpc.start()
        key = hashlib.sha256(str(job["seed"]).encode()).digest()[:16]
        mpc._prss_keys = {k: key for k in mpc._prss_keys}
        secint = mpc.SecInt(64)
        guard = None
        if job.get("checks"):
            from dnode.node.mpc.malicious import Guard

            guard = Guard(mpc, secint, b"dp-sampler")
        s = TableSession(mpc, secint, [], 1, guard)
        z = (await noise.sample(s, dp))["z"]
        out = await s.open(z, "z")
        await mpc.shutdown()
        return out

    print(json.dumps(mpc.run(run())))


if __name__ == "__main__":
    main()
