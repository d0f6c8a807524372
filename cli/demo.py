"""``dnode demo``: the whole network on this machine, as separate processes, one real task.

Three data owners (hospitals, say) want the mean age of their patients without showing anyone
their records. Each secret-shares its values locally; three staked nodes compute the mean with
MPyC over libp2p; the committee's result is attested on-chain and printed.
"""

from __future__ import annotations

import tempfile
import time
from fractions import Fraction
from pathlib import Path

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.devcluster import ClusterError, DevCluster
from dnode.cli.units import fmt_eth
from dnode.oracle.encoding import AggregateResult

DEMO_INPUTS = {
    "owner-a": [34, 51, 29, 62, 45, 38],
    "owner-b": [71, 23, 56, 40],
    "owner-c": [33, 48, 67, 52, 39],
}


@click.command("demo")
@click.option("--nodes", default=3, show_default=True, help="Node processes to start (>= 3).")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where homes, keystores and logs go [a fresh temporary directory].",
)
@pass_ctx
def demo(c: Ctx, nodes: int, workdir: Path | None) -> None:
    """Run a devnet, deploy, start nodes, and compute an MPC mean from 3 data owners."""
    if nodes < 3:
        raise CliError("the demo needs at least 3 nodes (committee of 3)")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="dnode-demo-"))
    say = (lambda s: None) if c.as_json else (lambda s: click.echo(s, err=True))
    external = c.rpc_url if c.rpc_url != "http://127.0.0.1:8545" else None
    cluster = DevCluster(workdir, rpc_url=external, say=say)
    t0 = time.monotonic()
    try:
        with cluster.running():
            cluster.start_nodes([f"node-{i + 1}" for i in range(nodes)])
            requester = cluster.member("requester")
            owners = {name: cluster.member(name) for name in DEMO_INPUTS}
            task_id = cluster.post_mpc(requester, list(owners.values()))
            say(f"task   {task_id} posted: mpc.mean over 3 data owners, reward 0.3 ETH escrowed")
            files = cluster.write_inputs(
                DEMO_INPUTS, header="# private values: never leave this machine\n"
            )
            for n, out in cluster.contribute_all(task_id, owners, files).items():
                say(f"owner  {n} shared {out['values']} values to {len(out['seats'])} seats")
            res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "300")
            say(f"oracle result reported on-chain, digest {res['result_digest'][:18]}…")
            final = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "120")
            deadline = time.monotonic() + 60
            while not final["final"] and time.monotonic() < deadline:
                time.sleep(1)
                final = cluster.dnode(requester, "task", "result", str(task_id))
            status = cluster.dnode(requester, "task", "status", str(task_id))
            payouts = {
                n.member.name: cluster.dnode(n.member, "balance")["credits"] for n in cluster.nodes
            }
    except ClusterError as e:
        raise CliError(f"{e} (logs in {workdir})") from None
    plain = Fraction(
        sum(sum(v) for v in DEMO_INPUTS.values()), sum(len(v) for v in DEMO_INPUTS.values())
    )
    expected = str(AggregateResult.from_fraction(plain, 0))
    summary = {
        "task_id": task_id,
        "result": final["value"],
        "plaintext_mean": expected,
        "equal": final["value"] == expected,
        "final": final["final"],
        "status": status["status"],
        "seats": status["seats"],
        "payouts_wei": payouts,
        "seconds": round(time.monotonic() - t0, 1),
        "workdir": str(workdir),
    }
    c.emit(
        summary,
        f"\nattested mean = {final['value']}  (plaintext mean {expected}: "
        f"{'equal' if summary['equal'] else 'DIFFERENT'})\n"
        f"task {task_id} {status['status']}; rewards credited: "
        + ", ".join(f"{k} {fmt_eth(v)}" for k, v in payouts.items())
        + f"\n({summary['seconds']} s; homes and logs in {workdir})",
    )
    if not summary["equal"]:
        raise CliError("the attested result differs from the plaintext mean")


COMMANDS = [demo]
