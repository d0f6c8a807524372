"""What does the network cost over hand-run MPyC? Mean and variance of N values, 3 data owners.

Side by side in ONE run, on the same data (scripts/mpc_bare.py:owner_values):
  (a) bare MPyC: 3 local party processes, each the owner of a third of the data (mpc.input);
  (b) dnode: the embedded devnet, 3 node processes, an ``mpc.variance`` task posted with the
      CLI, each owner contributing with ``dnode task contribute`` (3 processes in parallel),
      until the result is attested on-chain (the report transaction).
Prints b/a and dnode's fixed overhead: post -> MPC start and MPC end -> attested result, in
seconds and in blocks. Timestamps come from the node logs (ms) and the chain's events.

Also in the same run, on the same data, the cost of security against a malicious minority:
the three dnode party processes alone (node.mpc.executor on localhost, shares prepared in
advance) as
  (c) semi-honest: MPyC's protocols as is (job "checks": false; elementwise x*x like (a)), and
  (d) checked: node.mpc.malicious + node.mpc.influence (the default): error-detecting
      openings, owner-sharing consistency, Chida et al. multiplication check, per-owner
      influence bounds with the owners' witnesses.
d/c is the price of the checks (issue 13 goal: <= 2).

    python scripts/bench_mpc.py --json            # N = 10,000 and 1,000,000
    python scripts/bench_mpc.py --n 10000         # one size
    python scripts/bench_mpc.py --parties-only    # (a), (c), (d) without the devnet
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from dnode.cli.devcluster import DevCluster, free_port
from dnode.contracts.client import ChainClient, connect
from dnode.contracts.manifest import Deployment

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_data import machine_info, owner_values  # noqa: E402

LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*task (\d+): (.*)$")


def run_bare(n: int, seed: int) -> dict[str, Any]:
    ports = [free_port() for _ in range(3)]
    addr = [a for p in ports for a in ("-P", f"127.0.0.1:{p}")]
    env = {**os.environ, "BENCH_N": str(n), "BENCH_SEED": str(seed)}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "mpc_bare.py"), "-M3", f"-I{i}", *addr, "--no-log"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(3)
    ]
    outs = [p.communicate(timeout=1800) for p in procs]
    wall = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs, strict=True):
        if p.returncode:
            raise RuntimeError(f"bare MPyC party failed: {err.decode()[-500:]}")
    res = json.loads(outs[0][0].decode().strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "mpc_compute_s": res["compute_s"],
        "sum": res["sum"],
        "sum_sq": res["sum_sq"],
    }


def run_parties(n: int, seed: int, checks: bool) -> dict[str, Any]:
    """The 3 dnode parties of an mpc.variance session on localhost (no network layer), the job
    built from the program's spec as a node builds it (one int column, 3 owners)."""
    from fractions import Fraction as F

    import trio

    from dnode.node.mpc import influence
    from dnode.node.mpc.executor import MpcJob, SubprocessExecutor
    from dnode.node.mpc.sharing import field_modulus, share
    from dnode.scheduler.programs import Column, TaskParams

    m, t = 3, 1
    per_values = [owner_values(n, seed, i) for i in range(3)]
    bound = max((abs(v) for vals in per_values for v in vals), default=1)
    col = Column("value", "int", 0, F(-bound), F(bound))
    owners = tuple("0x" + f"{i + 1:040x}" for i in range(3))
    params = TaskParams("mpc.variance", owners, columns=(col,), max_rows=max(n, 1))
    spec, bl = params.spec, params.bit_length
    p = field_modulus(bl)
    w = influence.task_witness(params) if checks else None
    t_share = time.perf_counter()
    per_owner = []
    for vals in per_values:
        vec = [*vals, *influence.table_witness(vals, w)] if w is not None else vals
        per_owner.append(share(vec, m, t, p))
    share_s = time.perf_counter() - t_share
    ports = [("127.0.0.1", free_port()) for _ in range(m)]
    jobs = [
        MpcJob(
            1,
            params.program,
            spec.kernel,
            spec.kernel_args(params),
            spec.width(params),
            bl,
            i,
            ports,
            t,
            [o[i] for o in per_owner],
            checks=checks,
            witness=w,
        )  # fmt: skip
        for i in range(m)
    ]
    results: list[Any] = [None] * m

    async def all_parties() -> None:
        async def one(i: int) -> None:
            results[i] = await SubprocessExecutor().run_party(jobs[i], timeout=1800)

        async with trio.open_nursery() as nursery:
            for i in range(m):
                nursery.start_soon(one, i)

    t0 = time.perf_counter()
    trio.run(all_parties)
    wall = time.perf_counter() - t0
    r = results[0].revealed
    return {"wall_s": wall, "owner_share_s": share_s, "sum": r["sum"][0], "sum_sq": r["sumsq"][0]}


def _log_times(path: Path, task_id: int) -> dict[str, float]:
    """First time each node-log event happened for ``task_id`` (epoch seconds)."""
    marks = {"starting": "mpc_start", "MPC done": "mpc_end", "result reported": "reported"}
    out: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_TS.match(line)
        if not m or int(m.group(2)) != task_id:
            continue
        for needle, key in marks.items():
            if needle in m.group(3) and key not in out:
                out[key] = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return out


def _data_file(workdir: Path, i: int, n: int, seed: int) -> Path:
    """Owner i's third of the N values, with a header naming the size's column (an agent
    serving several sizes picks the file that has the task's column)."""
    f = workdir / f"owner-{i}-{n}.csv"
    if not f.exists():
        f.write_text(f"v{n}\n" + "\n".join(map(str, owner_values(n, seed, i))) + "\n")
    return f


def start_agents(cluster: DevCluster, sizes: list[int], seed: int, workdir: Path) -> None:
    """--owner-agents: each owner runs ``dnode owner start`` holding its file of every size
    (started before any task is posted, as a data owner's agent would be running)."""
    boot = [x.addrs[0] for x in cluster.nodes if x.addrs]
    for i in range(3):
        cfg = workdir / f"owner-{i}-agent.toml"
        text = "poll_interval = 0.5\nretry_interval = 0.5\n"
        for n in dict.fromkeys(sizes):  # a size repeated (--n 10000 --n 10000): one file
            text += f'[[dataset]]\nname = "v{n}"\nfile = "{_data_file(workdir, i, n, seed)}"\n'
        cfg.write_text(text)
        cluster.start_agent(cluster.members[f"owner-{i}"], cfg, bootstrap=boot)


def run_dnode(
    cluster: DevCluster, n: int, seed: int, workdir: Path, agents: bool = False
) -> dict[str, Any]:
    requester, owners = (
        cluster.members["requester"],
        [cluster.members[f"owner-{i}"] for i in range(3)],
    )
    files = [_data_file(workdir, i, n, seed) for i in range(3)]
    boot = cluster.bootstrap()[0]
    args = [
        "task",
        "post",
        "--program",
        "mpc.variance",
        "--reward",
        "0.3ether",
        "--max-rows",
        str(n),
        "--column",
        f"v{n}:int:0:1000",
        "--input-timeout",
        "600",
        "--report-timeout",
        "1800",
        "--bootstrap",
        boot,
    ]
    for o in owners:
        args += ["--owner", o.address]
    t_post = time.time()
    task_id = cluster.dnode(requester, *args)["task_id"]
    t_contrib = time.time()

    def contribute(i: int) -> None:
        cluster.dnode(owners[i], "task", "contribute", str(task_id), "--inputs", str(files[i]),
                      "--bootstrap", boot, timeout=1800)  # fmt: skip

    if not agents:  # with agents, the owners contribute on their own
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(contribute, range(3)))
    t_contrib_done = time.time()
    res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "1800", timeout=1900)
    times = [_log_times(nd.log_path, task_id) for nd in cluster.nodes]
    mpc_start = min(t["mpc_start"] for t in times if "mpc_start" in t)
    mpc_end = max(t["mpc_end"] for t in times if "mpc_end" in t)
    reported = min(t["reported"] for t in times if "reported" in t)
    dep = Deployment.load(cluster.manifest)
    chain = ChainClient(connect(cluster.rpc_url), dep)
    blocks = {
        e.name: e.block_number
        for e in chain.events(dep.deploy_block)
        if e.args.get("task_id") == task_id
    }
    return {
        "task_id": task_id,
        "total_s": reported - t_post,
        "post_to_mpc_start_s": mpc_start - t_post,
        "mpc_s": mpc_end - mpc_start,
        "mpc_end_to_attested_s": reported - mpc_end,
        "owners": "agents" if agents else "task contribute",
        "contribute_wall_s": None if agents else t_contrib_done - t_contrib,
        "blocks": {
            "post_to_committee": blocks.get("CommitteeFormed", 0) - blocks.get("TaskPosted", 0),
            "post_to_attested": blocks.get("ResultReported", 0) - blocks.get("TaskPosted", 0),
        },
        "values": res["values"],
        "count": res["count"],
    }


def expected(n: int, seed: int) -> dict[str, str]:
    xs = [Fraction(v) for i in range(3) for v in owner_values(n, seed, i)]
    mean = sum(xs) / len(xs)
    var = sum(x * x for x in xs) / len(xs) - mean * mean
    from dnode.oracle.encoding import AggregateResult

    r = AggregateResult.from_fractions([mean, var], len(xs))
    return dict(zip((f"mean/v{n}", f"variance/v{n}"), r.texts(), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="values in total (repeatable)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--parties-only", action="store_true", help="skip the devnet run (b)")
    ap.add_argument(
        "--owner-agents",
        action="store_true",
        help="(b) with the owners' agents (dnode owner start) instead of dnode task contribute",
    )
    args = ap.parse_args()
    sizes = args.n or [10_000, 1_000_000]
    workdir = Path(tempfile.mkdtemp(prefix="dnode-bench-mpc-"))
    rows = []
    if args.parties_only:
        for n in sizes:
            a = run_bare(n, args.seed)
            c = run_parties(n, args.seed, checks=False)
            d = run_parties(n, args.seed, checks=True)
            ok = a["sum"] == c["sum"] == d["sum"]
            ok = ok and a["sum_sq"] == c["sum_sq"] == d["sum_sq"]
            rows.append(_checks_row(n, a, c, d, ok))
        _print(rows, args.json, workdir)
        return
    cluster = DevCluster(workdir, challenge_period=3600)
    with cluster.running():
        for i in range(3):
            cluster.start_node(f"node-{i + 1}", extra_args=["--mpc-timeout", "1800"])
        cluster.member("requester")
        for i in range(3):
            cluster.member(f"owner-{i}")
        if args.owner_agents:
            start_agents(cluster, sizes, args.seed, workdir)
        for n in sizes:
            a = run_bare(n, args.seed)
            b = run_dnode(cluster, n, args.seed, workdir, agents=args.owner_agents)
            c = run_parties(n, args.seed, checks=False)
            d = run_parties(n, args.seed, checks=True)
            want = expected(n, args.seed)
            ok = a["sum"] == c["sum"] == d["sum"]
            ok = ok and a["sum_sq"] == c["sum_sq"] == d["sum_sq"]
            rows.append(
                {
                    **_checks_row(n, a, c, d, ok),
                    "dnode": b,
                    "ratio_b_over_a": b["total_s"] / a["wall_s"],
                    "correct": b["values"] == want and ok,
                    "expected": want,
                }
            )
    _print(rows, args.json, workdir)


def _checks_row(n: int, a: dict, c: dict, d: dict, ok: bool) -> dict[str, Any]:
    return {
        "n": n,
        "bare": a,
        "parties_semi_honest": c,
        "parties_checked": d,
        "ratio_checked_over_semi_honest": d["wall_s"] / c["wall_s"],
        "ratio_checked_over_bare": d["wall_s"] / a["wall_s"],
        "correct": ok,
    }


def _print(rows: list[dict[str, Any]], as_json: bool, workdir: Path) -> None:
    report = {
        "benchmark": "mean and variance of N values from 3 data owners, committee of 3",
        "machine": machine_info(),
        "rows": rows,
        "workdir": str(workdir),
    }
    if as_json:
        print(json.dumps(report, indent=1))
        return
    print(f"{'N':>10} {'bare s':>8} {'semi-honest s':>14} {'checked s':>10} ok")
    for r in rows:
        print(
            f"{r['n']:>10} {r['bare']['wall_s']:>8.2f} "
            f"{r['parties_semi_honest']['wall_s']:>14.2f} "
            f"{r['parties_checked']['wall_s']:>10.2f} {r['correct']}"
        )
    if not all("dnode" in r for r in rows):
        return
    print(
        f"{'N':>10} {'bare s':>8} {'dnode s':>8} {'b/a':>6} {'post→MPC':>9} {'MPC':>7} "
        f"{'MPC→attested':>13} {'blocks':>7} ok"
    )
    for r in rows:
        d = r["dnode"]
        print(
            f"{r['n']:>10} {r['bare']['wall_s']:>8.2f} {d['total_s']:>8.2f} "
            f"{r['ratio_b_over_a']:>6.2f} {d['post_to_mpc_start_s']:>9.2f} {d['mpc_s']:>7.2f} "
            f"{d['mpc_end_to_attested_s']:>13.2f} {d['blocks']['post_to_attested']:>7} "
            f"{r['correct']}"
        )


if __name__ == "__main__":
    main()
