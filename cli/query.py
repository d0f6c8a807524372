"""``dnode query "SQL"``: compile a SQL aggregate over owners' (or datasets') tables, explain
what it reveals and costs, post it as one MPC task, optionally wait for the answer.

Thin: compiling and the explanation are :mod:`dnode.scheduler.programs.query.build`; posting
is :func:`post_query` (usable from Python with a ChainClient)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import trio
from eth_utils import is_address, keccak, to_checksum_address

from dnode.cli import market, private
from dnode.cli.context import CliError, Ctx
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.contracts.client import ChainClient
from dnode.node import peer_client
from dnode.scheduler.programs import MAX_COMMITTEE, MIN_COMMITTEE, TaskParams
from dnode.scheduler.programs.query.build import explain, explain_lines, query_params, read_schema
from dnode.scheduler.programs.query.plan import compile_query
from dnode.scheduler.programs.schema import Column


def post_query(
    chain: ChainClient,
    params: TaskParams,
    *,
    reward: int,
    committee_size: int = 3,
    seat_timeout: int = 120,
    report_timeout: int = 600,
    datasets: Sequence[int] = (),
    costs: Sequence[int] = (),
    bootstrap: Sequence[str] = (),
) -> tuple[int, int]:
    """Escrow the reward (and the datasets' prices), post the task and announce its params;
    returns (task id, peers announced to)."""
    spec = params.spec
    now = max(int(time.time()), chain.block_timestamp())
    if datasets:
        task_id = chain.post_data_task(
            spec.program_id, params.digest, datasets=list(datasets), costs=list(costs),
            reward=reward, seat_deadline=now + seat_timeout,
            compute_window=report_timeout - seat_timeout, capability=spec.capability_bit,
            committee_size=committee_size,
        )  # fmt: skip
    else:
        task_id = chain.post_task(
            spec.program_id, params.digest, capability=spec.capability_bit,
            committee_size=committee_size, seat_deadline=now + seat_timeout,
            report_deadline=now + report_timeout, reward=reward,
        )  # fmt: skip
    announced = 0
    if bootstrap:
        announced = trio.run(peer_client.announce, list(bootstrap), task_id, params)
    return task_id, announced


def _owners_by_table(
    catalog: Mapping[str, Sequence[Column]], owners: Sequence[str], tables: Sequence[str]
) -> dict[str, list[str]]:
    if tables and len(tables) not in (1, len(owners)):
        raise CliError(f"give one --table for all owners, or one per --owner ({len(owners)})")
    names = list(tables) * (len(owners) // max(1, len(tables))) if tables else []
    if not names and owners:
        if len(catalog) != 1:
            raise CliError("several --schema tables: say which one each --owner holds (--table)")
        names = [next(iter(catalog))] * len(owners)
    out: dict[str, list[str]] = {}
    for o, t in zip(owners, names, strict=True):
        if not is_address(o):
            raise CliError(f"data owner {o!r} is not an address")
        if t not in catalog:
            raise CliError(f"--table {t!r} has no --schema (known: {', '.join(catalog)})")
        out.setdefault(t, []).append(to_checksum_address(o))
    return out


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
    if not schemas:
        raise CliError("give each table's public schema with --schema FILE")
    if not MIN_COMMITTEE <= committee_size <= MAX_COMMITTEE:
        raise CliError(f"committee size must be between {MIN_COMMITTEE} and {MAX_COMMITTEE}")
    if not 0 < seat_timeout < report_timeout:
        raise CliError("need 0 < --seat-timeout < --report-timeout")
    catalog: dict[str, tuple[Column, ...]] = {}
    digests: dict[bytes, str] = {}
    for p in schemas:
        name, cols = read_schema(p)
        if name in catalog:
            raise CliError(f"table {name!r} has two --schema files")
        catalog[name] = cols
        digests[keccak(p.read_bytes())] = name
    if datasets and owners:
        raise CliError("give --dataset or --owner, not both: a dataset's owner contributes")
    if privacy_costs and not datasets:
        raise CliError("--privacy-cost needs --dataset")
    by_table = _owners_by_table(catalog, owners, tables)
    dp = {"epsilon": epsilon, "rho": rho, "delta": delta}
    derived = market.asks_dp(dp)
    chain = None
    costs: list[int] = []
    prices: dict[int, int] = {}
    if datasets:
        chain = c.chain(c.account())
        ds_owners, costs = market.dataset_owners(chain, datasets, privacy_costs, derived=derived)
        for ds, o in zip(datasets, ds_owners, strict=True):
            info = chain.dataset_info(ds)
            t = digests.get(bytes(info.schema_digest))
            if t is None:
                raise CliError(f"dataset {ds}: no --schema file has its schema digest "
                               f"0x{bytes(info.schema_digest).hex()}")  # fmt: skip
            by_table.setdefault(t, []).append(to_checksum_address(o))
            prices[ds] = info.price
    key = private.result_key(c) if private_result else ""
    from dnode.cli.task import _min_aggregation

    used = compile_query(sql, catalog).tables  # the owners of the tables the query reads
    everyone = tuple(dict.fromkeys(o for t in used for o in by_table.get(t, ())))
    minimum = _min_aggregation(everyone, None, None, allow_single_owner)
    plan, params = query_params(
        sql, catalog, by_table, max_rows=max_rows, input_timeout=input_timeout,
        extra=minimum.to_extra(), result_key=key, dp=dp,
    )  # fmt: skip
    if datasets and derived:  # the composed cost of the noisy answer, per dataset budget
        assert chain is not None
        costs = market.dp_costs(chain, datasets, params)
    e = explain(params, plan, by_table, reward=reward, prices=prices, committee=committee_size)
    if explain_only:
        c.emit({"explain": e}, explain_lines(e))
        return
    chain = chain or c.chain(c.account())
    task_id, announced = post_query(
        chain, params, reward=reward, committee_size=committee_size, seat_timeout=seat_timeout,
        report_timeout=report_timeout, datasets=datasets, costs=costs, bootstrap=bootstrap,
    )  # fmt: skip
    _keep_params(c, chain, task_id, params)
    out: dict[str, Any] = {
        "task_id": task_id,
        "program": params.program,
        "params_digest": "0x" + params.digest.hex(),
        "reward": reward,
        "announced_to": announced,
        "params": params.to_dict(),
        "datasets": list(datasets),
    }
    if not wait_s:
        c.emit(out, f"posted query task {task_id} (reward {fmt_eth(reward)}, announced to "
               f"{announced} peer(s)); read it with dnode task result {task_id}")  # fmt: skip
        return
    from dnode.cli.task import result

    cctx.invoke(result, task_id=task_id, wait_s=wait_s, params_file=None, bootstrap=bootstrap)


def _keep_params(c: Ctx, chain: ChainClient, task_id: int, params: TaskParams) -> None:
    """Where ``dnode task result`` finds them to shape and label the answer."""
    from dnode.cli.task import _params_file

    kept = _params_file(c, chain, task_id)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(params.canonical())
    except OSError:
        pass


COMMANDS = [query]
