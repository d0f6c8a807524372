"""``dnode query "SQL"``: compile a SQL aggregate over owners' (or datasets') tables, explain
what it reveals and costs, post it as one MPC task, optionally wait for the answer.

Thin: compiling, explaining and posting are the SDK's (:meth:`dnode.cli.sdk.Client.query`,
:meth:`~dnode.cli.sdk.Client.explain`); the compiler is
:mod:`dnode.scheduler.programs.query.build`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dnode.cli.context import Ctx
from dnode.cli.units import AMOUNT, fmt_eth


@click.command("query")
@click.argument("sql")
@click.option(
    "--schema",
    "schemas",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help='A table\'s public schema: JSON {"table": NAME, "columns": [...]} (repeatable).',
)
@click.option("--owner", "owners", multiple=True, help="A data owner holding a table (repeatable).")
@click.option("--table", "tables", multiple=True, help="The table each --owner holds (or one).")
@click.option(
    "--dataset",
    "datasets",
    type=click.IntRange(min=1),
    multiple=True,
    help="A published dataset (repeatable): its schema digest picks its --schema file.",
)
@click.option("--privacy-cost", "privacy_costs", multiple=True, help="Per --dataset (ε or ρ).")
@click.option("--epsilon", help="Differential privacy: noisy answer, total ε (sets the cost).")
@click.option("--rho", help="Differential privacy: total zCDP ρ instead of --epsilon.")
@click.option("--delta", help="With --epsilon/--rho: the sampler's largest δ (default 1e-9).")
@click.option(
    "--dp-bins",
    type=click.IntRange(min=1),
    help="With --epsilon/--rho: bins of the noisy histogram MIN/MAX/quantiles are read from "
    "(default 32).",
)
@click.option("--reward", type=AMOUNT, default="0.3ether", show_default=True)
@click.option("--committee", "committee_size", default=3, show_default=True)
@click.option("--seat-timeout", default=120, show_default=True)
@click.option("--report-timeout", default=600, show_default=True)
@click.option("--input-timeout", default=120, show_default=True)
@click.option("--max-rows", default=1 << 16, show_default=True, help="Most rows in all tables.")
@click.option("--bootstrap", multiple=True, envvar="DNODE_BOOTSTRAP", help="Peer multiaddr.")
@click.option("--private-result", is_flag=True, help="Seal the answer to this account's key.")
@click.option(
    "--allow-single-owner",
    is_flag=True,
    help="Allow a query over one owner's rows: its answer then publishes that owner's data.",
)
@click.option("--explain", "explain_only", is_flag=True, help="Explain; post nothing.")
@click.option("--wait", "wait_s", default=0.0, help="Seconds to wait for the answer.")
@click.pass_context
def query(
    cctx: click.Context,
    sql: str,
    schemas: tuple[Path, ...],
    owners: tuple[str, ...],
    tables: tuple[str, ...],
    datasets: tuple[int, ...],
    privacy_costs: tuple[str, ...],
    epsilon: str | None,
    rho: str | None,
    delta: str | None,
    dp_bins: int | None,
    reward: int,
    committee_size: int,
    seat_timeout: int,
    report_timeout: int,
    input_timeout: int,
    max_rows: int,
    bootstrap: tuple[str, ...],
    private_result: bool,
    allow_single_owner: bool,
    explain_only: bool,
    wait_s: float,
) -> None:
    """Answer a SQL aggregate over owners' tables in MPC (WHERE, GROUP BY, HAVING; a table
    held by several owners is their UNION ALL). --explain says what it reveals and costs.

    \b
    Examples:
      dnode query "SELECT region, COUNT(*), AVG(income) FROM customers GROUP BY region" \\
          --schema customers.json --owner 0xA.. --owner 0xB.. --explain
      dnode --home ~/req query "SELECT AVG(age) FROM patients WHERE age >= 40" \\
          --schema patients.json --owner 0xA.. --owner 0xB.. --bootstrap /ip4/…/p2p/… --wait 600
    """
    c = cctx.find_object(Ctx)
    assert c is not None
    client = c.client(bootstrap)
    kw: dict[str, Any] = dict(
        owners=owners, tables=tables, datasets=datasets, privacy_cost=privacy_costs,
        reward=reward, committee=committee_size, input_timeout=input_timeout,
        max_rows=max_rows, allow_single_owner=allow_single_owner,
        private_result=private_result, epsilon=epsilon, rho=rho, delta=delta,
        dp_bins=dp_bins,
    )  # fmt: skip
    if explain_only:
        from dnode.scheduler.programs.query.build import explain_lines

        e = client.explain(sql, schemas, **kw)
        c.emit({"explain": e}, explain_lines(e))
        return
    t = client.query(sql, schemas, seat_timeout=seat_timeout, report_timeout=report_timeout,
                     **kw)  # fmt: skip
    assert t.params is not None
    out: dict[str, Any] = {
        "task_id": t.id,
        "program": t.params.program,
        "params_digest": "0x" + t.params.digest.hex(),
        "reward": reward,
        "announced_to": t.announced_to,
        "params": t.params.to_dict(),
        "datasets": list(datasets),
    }
    if not wait_s:
        c.emit(out, f"posted query task {t.id} (reward {fmt_eth(reward)}, announced to "
               f"{t.announced_to} peer(s)); read it with dnode task result {t.id}")  # fmt: skip
        return
    from dnode.cli.task import result

    cctx.invoke(result, task_id=t.id, wait_s=wait_s, params_file=None, bootstrap=bootstrap)


COMMANDS = [query]
