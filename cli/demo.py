"""``dnode demo``: the whole network on this machine, as separate processes, one real task.

Three hospitals each publish a dataset of patient records (different tables, one shared
``age`` column) with a price, the programs they allow and a privacy budget, and run an owner
agent that serves it. A researcher browses the catalogue and buys the mean age over the
three datasets, delivered privately to it: the agents secret-share their column to a staked
committee on their own, three nodes compute with MPyC over libp2p, the chain records a
digest of the sealed result, only the researcher opens it, and the hospitals are paid.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.devcluster import ClusterError, DevCluster
from dnode.cli.units import fmt_eth
from dnode.oracle.encoding import AggregateResult

#: each hospital's private table (never leaves its machine); the task reads ``age``
DEMO_TABLES = {
    "hospital-a": "age,weight_kg\n34,71\n51,80\n29,58\n62,77\n45,90\n38,66\n",
    "hospital-b": "ward,age\ncardio,71\northo,23\ncardio,56\nonco,40\n",
    "hospital-c": "age\n33\n48\n67\n52\n39\n",
}
PRICE = "0.01ether"
PRIVACY_COST = "0.1"


def _ages(table: str) -> list[int]:
    rows = [r.split(",") for r in table.strip().splitlines()]
    i = rows[0].index("age")
    return [int(r[i]) for r in rows[1:]]


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
    """Run a devnet, deploy, start nodes, and compute an MPC mean from 3 data owners.

    \b
    Examples:
      dnode demo
      dnode demo --nodes 4 --workdir /tmp/dnode-demo
      dnode --json demo
    """
    if nodes < 3:
        raise CliError("the demo needs at least 3 nodes (committee of 3)")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="dnode-demo-"))
    say = (lambda s: None) if c.as_json else (lambda s: click.echo(s, err=True))
    external = c.rpc_url if c.rpc_url != "http://127.0.0.1:8545" else None
    cluster = DevCluster(workdir, rpc_url=external, say=say)
    t0 = time.monotonic()
    try:
        with cluster.running():
            requester = cluster.member("researcher")
            owners = {name: cluster.member(name) for name in DEMO_TABLES}
            # the hospitals publish while the nodes stake and start (different accounts: no
            # shared nonce); their agents start once a node serves (they bootstrap to it)
            with ThreadPoolExecutor(1 + len(owners)) as pool:
                started = pool.submit(cluster.start_nodes, [f"node-{i + 1}" for i in range(nodes)])
                pubs = {n: pool.submit(_publish, cluster, n, m) for n, m in owners.items()}
                started.result()
                datasets = {n: f.result() for n, f in pubs.items()}
                for f in [pool.submit(_serve, cluster, n, owners[n], datasets[n]) for n in owners]:
                    f.result()
            listed = cluster.dnode(requester, "data", "list")["datasets"]
            say(f"market {len(listed)} datasets listed; the researcher buys the mean age over all")
            boot = cluster.bootstrap()[0]
            sets = [a for i in datasets.values() for a in ("--dataset", str(i))]
            posted = cluster.dnode(
                requester, "task", "post", "--program", "mpc.mean", "--reward", "0.3ether",
                "--column", "age:int:0:130", *sets, "--privacy-cost", PRIVACY_COST,
                "--private-result", "--bootstrap", boot,
            )  # fmt: skip
            task_id = posted["task_id"]
            say(
                f"task   {task_id} posted: reward 0.3 ETH + 3 x {PRICE} of prices escrowed, "
                f"ε {PRIVACY_COST} charged to each dataset; the agents share on their own"
            )
            res = cluster.dnode(requester, "task", "result", str(task_id), "--wait", "300",
                                "--bootstrap", boot)  # fmt: skip
            attested_s = round(time.monotonic() - t0, 1)  # the report is on-chain
            say(
                f"result sealed to the researcher; on-chain digest {res['result_digest'][:18]}… "
                f"(attested {attested_s} s after the chain started)"
            )
            status = cluster.wait_status(requester, task_id, "finalized", timeout=120)
            reader = cluster.reader()
            price = reader.dataset_info(datasets["hospital-a"]).price
            cluster.watch(
                lambda: all(reader.credits(m.address) >= price for m in owners.values()),
                "the hospitals' payments", 120,
            )  # fmt: skip
            owner_credits = {n: reader.credits(m.address) for n, m in owners.items()}
            budget_left = {n: reader.dataset_info(i).budget_left / 1e6 for n, i in datasets.items()}
            payouts = {
                n.member.name: cluster.dnode(n.member, "balance")["credits"] for n in cluster.nodes
            }
    except ClusterError as e:
        raise CliError(f"{e} (logs in {workdir})") from None
    ages = [a for t in DEMO_TABLES.values() for a in _ages(t)]
    expected = str(AggregateResult.from_fraction(Fraction(sum(ages), len(ages)), 0))
    summary = {
        "task_id": task_id,
        "datasets": datasets,
        "result": res["value"],
        "private": res["private"],
        "plaintext_mean": expected,
        "equal": res["value"] == expected,
        "status": status["status"],
        "seats": status["seats"],
        "payouts_wei": payouts,
        "owner_credits_wei": owner_credits,
        "budget_left": budget_left,
        "attested_seconds": attested_s,
        "seconds": round(time.monotonic() - t0, 1),
        "workdir": str(workdir),
    }
    c.emit(
        summary,
        f"\nmean age = {res['value']}, opened by the researcher alone (plaintext mean "
        f"{expected}: {'equal' if summary['equal'] else 'DIFFERENT'})\n"
        f"task {task_id} {status['status']}; hospitals paid: "
        + ", ".join(f"{k} {fmt_eth(v)}" for k, v in owner_credits.items())
        + "; nodes rewarded: "
        + ", ".join(f"{k} {fmt_eth(v)}" for k, v in payouts.items())
        + "\nprivacy budget left: "
        + ", ".join(f"{k} ε {v:g}" for k, v in budget_left.items())
        + f"\n({summary['seconds']} s; homes and logs in {workdir})",
    )
    if not summary["equal"]:
        raise CliError("the result differs from the plaintext mean")


def _publish(cluster: DevCluster, name: str, owner: object) -> int:
    """``name`` writes its table and publishes it with a public mock sample."""
    table = cluster.workdir / f"{name}.csv"
    table.write_text(DEMO_TABLES[name])
    header = DEMO_TABLES[name].splitlines()[0]
    schema = cluster.workdir / f"{name}-schema.json"
    schema.write_text(json.dumps({"columns": header.split(",")}))
    mock = cluster.workdir / f"{name}-sample.csv"  # public mock rows, not patients
    mock.write_text(
        header + "\n" + "\n".join(",".join("1" for _ in header.split(",")) for _ in range(3)) + "\n"
    )
    pub = cluster.dnode(
        owner, "data", "publish", "--schema", str(schema), "--rows",  # type: ignore[arg-type]
        str(len(_ages(DEMO_TABLES[name]))), "--price", PRICE, "--program", "mpc.mean",
        "--family", "stats", "--epsilon", "1", "--sample", mock.as_uri(),
    )  # fmt: skip
    cluster.say(
        f"owner  {name} published dataset {pub['dataset_id']} ({header}; {PRICE} per task, "
        "ε budget 1)"
    )
    return int(pub["dataset_id"])


def _serve(cluster: DevCluster, name: str, owner: object, dataset_id: int) -> None:
    """``name`` starts its agent, which serves its dataset to the tasks its policy allows."""
    config = cluster.workdir / f"{name}-agent.toml"
    config.write_text(
        f'[[dataset]]\nname = "{name}-patients"\nfile = "{cluster.workdir / f"{name}.csv"}"\n'
        f'dataset_id = {dataset_id}\n[dataset.policy]\nprograms = ["family:stats"]\n'
    )
    cluster.start_agent(owner, config)  # type: ignore[arg-type]


COMMANDS = [demo]
