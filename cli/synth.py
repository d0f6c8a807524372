"""``dnode synth``: differentially private synthetic data from several owners' datasets (MST).

Thin: the task is built by :func:`dnode.scheduler.programs.synth.build.synth_params`, posted
over the datasets (their on-chain privacy budgets are charged the task's ε at posting), and
its sealed result is turned into rows and a report by
:func:`dnode.scheduler.programs.synth.build.write_outputs`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dnode.cli.context import CliError, Ctx
from dnode.cli.sdk import catalog
from dnode.cli.sdk.client import Client, check_sizes
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.scheduler.dp import MICRO
from dnode.scheduler.programs import TaskParams
from dnode.scheduler.programs.synth.build import synth_params, write_outputs


def _dataset_list(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--datasets wants comma-separated dataset ids, got {text!r}") from None
    if len(out) < 2 or any(x < 1 for x in out):
        raise CliError("--datasets names two or more datasets, e.g. --datasets 1,2")
    if len(set(out)) != len(out):
        raise CliError("--datasets names each dataset once")
    return out


def post_synth(
    client: Client,
    params: TaskParams,
    datasets: list[int],
    *,
    reward: int,
    committee_size: int = 3,
    seat_timeout: int = 120,
    report_timeout: int = 1800,
    bootstrap: tuple[str, ...] = (),
) -> tuple[int, int, list[int]]:
    """Post the task over ``datasets``, each charged the task's composed privacy cost in its
    budget's unit (OpenDP's accounting, rounded up to a millionth); returns (task id, peers
    announced to, costs). The params are kept to decode the result."""
    costs = catalog.dp_costs(client.signer, datasets, params)
    t = client.post_params(
        params, reward=reward, committee=committee_size, seat_timeout=seat_timeout,
        report_timeout=report_timeout, datasets=datasets, costs=costs, bootstrap=bootstrap,
    )  # fmt: skip
    return t.id, t.announced_to, costs


@click.command("synth")
@click.option("--datasets", "datasets_text", help="Published datasets, e.g. 1,2 (their owners "
              "contribute).")  # fmt: skip
@click.option(
    "--schema",
    "schemas",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Each dataset's public schema file (matched by the digest it was published with).",
)
@click.option(
    "--join",
    "join",
    help="The id column to join the datasets on (different columns about the same people); "
    "omit it when they hold the same columns.",
)
@click.option("--epsilon", help="The ε the task spends (pure DP; charged to every dataset).")
@click.option("--rho", help="Or the zCDP ρ it spends (datasets with a ρ budget).")
@click.option("--delta", help="The noise sampler's finite-precision δ [default: 1e-9].")
@click.option("--bins", default=8, show_default=True, help="Bins per numeric column (equal "
              "widths over its declared range: data-independent).")  # fmt: skip
@click.option("--rows", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Synthetic rows to write.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Synthetic CSV.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Quality report JSON [default: OUT.report.json].")  # fmt: skip
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the sampling (post-processing)."
)
@click.option("--task", "task_id", type=int, help="Fetch an earlier synth task's result instead "
              "of posting (its params were kept at posting).")  # fmt: skip
@click.option("--reward", type=AMOUNT, default="0.3ether", show_default=True)
@click.option("--committee", "committee_size", default=3, show_default=True)
@click.option("--seat-timeout", default=120, show_default=True)
@click.option("--report-timeout", default=1800, show_default=True)
@click.option("--input-timeout", default=300, show_default=True)
@click.option("--max-rows", default=1 << 16, show_default=True, help="Most rows in all tables.")
@click.option("--bootstrap", multiple=True, envvar="DNODE_BOOTSTRAP", help="Peer multiaddr.")
@click.option("--wait", "wait_s", default=1800.0, show_default=True,
              help="Seconds to wait for the result (0: post only).")  # fmt: skip
@click.pass_context
def synth(
    cctx: click.Context,
    datasets_text: str | None,
    schemas: tuple[Path, ...],
    join: str | None,
    epsilon: str | None,
    rho: str | None,
    delta: str | None,
    bins: int,
    rows: int,
    out: Path | None,
    report_path: Path | None,
    seed: int,
    task_id: int | None,
    reward: int,
    committee_size: int,
    seat_timeout: int,
    report_timeout: int,
    input_timeout: int,
    max_rows: int,
    bootstrap: tuple[str, ...],
    wait_s: float,
) -> None:
    """Differentially private synthetic data from several owners' datasets (MST in MPC).

    The committee joins the datasets on --join inside the MPC (or stacks them), measures
    noisy marginals there (MST: every 1-way marginal, a privately chosen tree of 2-way ones)
    and seals them to you; this command fits a graphical model to them and samples --rows rows
    (post-processing), with a quality report beside the CSV. Every dataset's on-chain privacy
    budget is charged the task's ε when it is posted. Minority clusters and non-linear
    relations may be lost.

    \b
    Examples:
      dnode --home ~/req synth --datasets 1,2 --schema ages.json --schema salaries.json \\
          --join id --epsilon 1 --rows 10000 --out synth.csv --bootstrap /ip4/…/p2p/…
      dnode --home ~/req synth --datasets 3,4,5 --schema sales.json --epsilon 0.5 \\
          --bins 16 --out synth.csv --wait 0
      dnode --home ~/req --json synth --task 7 --out synth.csv --bootstrap /ip4/…/p2p/…
    """
    c = cctx.find_object(Ctx)
    assert c is not None
    if task_id is not None:
        chain = c.chain(c.account())
        params = _kept(c, chain, task_id)
        return _finish(c, chain, task_id, params, rows, out, report_path, seed, bootstrap, wait_s)
    if not datasets_text:
        raise CliError("name the datasets: --datasets 1,2 (or fetch a result with --task ID)")
    datasets = _dataset_list(datasets_text)
    if not schemas:
        raise CliError("give each dataset's public schema with --schema FILE")
    if (epsilon is None) == (rho is None):
        raise CliError("give the privacy cost: --epsilon (or --rho), one of them")
    check_sizes(committee_size, seat_timeout, report_timeout)
    if wait_s and out is None:
        raise CliError("say where the synthetic rows go: --out FILE (or --wait 0 to post only)")
    by_digest = catalog.schemas_by_digest(schemas)
    client = c.client(bootstrap)
    chain = client.signer
    owners, tables = [], []
    for ds in datasets:
        info = chain.dataset_info(ds)
        if not info.exists:
            raise CliError(f"dataset {ds} does not exist")
        owners.append(info.owner)
        tables.append(catalog.schema_of(info, ds, by_digest))
    params = synth_params(
        tables, owners, join=join, epsilon=epsilon, rho=rho, delta=delta, bins=bins,
        max_rows=max_rows, input_timeout=input_timeout, result_key=client.result_key(),
    )  # fmt: skip
    # one-line refusals (budget left, expiry, retired) before anything is paid
    need = [Decimal(x) / MICRO for x in catalog.dp_costs(chain, datasets, params)]
    catalog.dataset_owners(chain, datasets, [str(x) for x in need])
    task_id, announced, costs = post_synth(
        client, params, datasets, reward=reward, committee_size=committee_size,
        seat_timeout=seat_timeout, report_timeout=report_timeout, bootstrap=bootstrap,
    )  # fmt: skip
    posted = {
        "task_id": task_id,
        "program": params.program,
        "params_digest": "0x" + params.digest.hex(),
        "datasets": datasets,
        "privacy_costs": [x / 1e6 for x in costs],
        "reward": reward,
        "announced_to": announced,
    }
    if not wait_s:
        c.emit(posted, f"posted synth task {task_id} over datasets {datasets} (reward "
               f"{fmt_eth(reward)}, each charged {costs[0] / 1e6:g}); fetch it with dnode synth "
               f"--task {task_id} --out FILE")  # fmt: skip
        return
    _finish(c, chain, task_id, params, rows, out, report_path, seed, bootstrap, wait_s, posted)


def _kept(c: Ctx, chain: ChainClient, task_id: int) -> TaskParams:
    params = c.client().known_params(task_id)
    if params is None or params.program != "synth.mst":
        raise CliError(f"task {task_id}: no synth.mst params kept here (post it from this home)")
    return params


def _finish(
    c: Ctx,
    chain: ChainClient,
    task_id: int,
    params: TaskParams,
    rows: int,
    out: Path | None,
    report_path: Path | None,
    seed: int,
    bootstrap: tuple[str, ...],
    wait_s: float,
    posted: dict[str, Any] | None = None,
) -> None:
    from dnode.cli.wait import _wait_for

    if out is None:
        raise CliError("say where the synthetic rows go: --out FILE")
    want = {TaskStatus.REPORTED, TaskStatus.FINALIZED}
    st = _wait_for(c, chain, task_id, want, max(wait_s, 1.0), "waiting for the sealed result")
    if st not in want:
        raise CliError(f"task {task_id} ended {st.name.lower()} without a result")
    from dnode.cli.sdk.private import result_private

    client = c.client(bootstrap)
    got = result_private(client.account, client.home, chain, task_id, params, bootstrap)
    doc = write_outputs(
        params, got["output"].values, rows=rows, out=out, report=report_path, seed=seed
    )
    q = doc["quality"]
    result = {**(posted or {"task_id": task_id}), "status": got["status"].name.lower(),
              "out": str(out), "report": doc["report"], "guarantee": doc["guarantee"],
              "quality": q}  # fmt: skip
    tree = ", ".join("~".join(e) for e in q["tree"])
    c.emit(
        result,
        f"task {task_id}: wrote {rows} synthetic rows to {out} (tree {tree}; mean 2-way TVD "
        f"vs the noisy marginals {q['mean_tvd_2way']}); report {doc['report']}; "
        f"ε {doc['guarantee']['epsilon']}, δ {doc['guarantee']['delta']}",
    )


COMMANDS = [synth]
