"""Dataset catalogue commands: ``dnode data publish|update|retire|list|show|sample|settle``.

A dataset lives on-chain (contracts/vyper/datasets.vy): its public schema digest, declared row
count, price per task, expiry, allowed programs, a privacy budget that can never be raised, and
where its public sample data is. The owner agent (``dnode owner``) serves the data itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from eth_utils import keccak

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.contracts.client import ChainClient
from dnode.contracts.data_market import (
    MAX_LOCATOR,
    MAX_PROGRAMS,
    MICRO,
    BudgetKind,
    DatasetInfo,
    to_micro,
)
from dnode.scheduler.programs import get_program, program_by_id
from dnode.scheduler.programs.registry import all_programs

_DURATION = re.compile(r"\s*([0-9]+)\s*([smhd]?)\s*")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@click.group("data")
def data() -> None:
    """Publish datasets and browse the catalogue (prices, policies, privacy budgets).

    \b
    Examples:
      dnode data list
      dnode data show 1
      dnode --home ~/a data publish --schema patients.json --rows 1000 --price 0.01ether \\
          --family stats --epsilon 1
    """


def parse_duration(text: str) -> int:
    """``3600``, ``90m``, ``12h``, ``30d`` -> seconds."""
    m = _DURATION.fullmatch(text)
    if not m or int(m.group(1)) == 0:
        raise CliError(f"{text!r} is not a duration (try 3600, 90m, 12h, 30d)")
    return int(m.group(1)) * _SECONDS[m.group(2)]


def program_ids(programs: tuple[str, ...], families: tuple[str, ...]) -> list[bytes]:
    """Program ids allowed by name and by family (a family is expanded here: the contract
    only checks ids)."""
    ids: list[bytes] = []
    for name in programs:
        ids.append(get_program(name).program_id)
    for family in families:
        members = [s.program_id for s in all_programs() if s.family == family]
        if not members:
            known = sorted({s.family for s in all_programs() if s.family})
            raise CliError(f"unknown program family {family!r} (known: {', '.join(known)})")
        ids.extend(members)
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_PROGRAMS:
        raise CliError(f"{len(unique)} programs allowed; a dataset allows at most {MAX_PROGRAMS}")
    return unique


def digest_of(schema: Path | None, digest: str | None) -> bytes:
    if (schema is None) == (digest is None):
        raise CliError("give exactly one of --schema FILE or --schema-digest 0x...")
    if schema is not None:
        try:
            return keccak(schema.read_bytes())
        except OSError as e:
            raise CliError(f"cannot read schema {schema}: {e.strerror}") from None
    text = str(digest).removeprefix("0x")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise CliError("--schema-digest must be 32 bytes of hex")
    return bytes.fromhex(text)


def check_locator(locator: str | None) -> None:
    if locator is not None and len(locator.encode()) > MAX_LOCATOR:
        raise CliError(f"--sample locator is longer than {MAX_LOCATOR} bytes")


def budget_of(epsilon: str | None, rho: str | None) -> tuple[BudgetKind, int]:
    if (epsilon is None) == (rho is None):
        raise CliError("give exactly one privacy budget: --epsilon (pure DP) or --rho (zCDP)")
    try:
        if epsilon is not None:
            return BudgetKind.EPSILON, to_micro(epsilon)
        return BudgetKind.RHO, to_micro(str(rho))
    except ValueError as e:
        raise CliError(str(e)) from None


def describe(d: DatasetInfo, now: int) -> dict[str, Any]:
    """The JSON of one dataset, with program names where the registry knows the id."""
    names = []
    for pid in d.programs:
        spec = program_by_id(pid)
        names.append(spec.name if spec else "0x" + pid.hex())
    state = "retired" if d.retired else ("expired" if now >= d.expiry else "live")
    return {
        "dataset_id": d.dataset_id,
        "owner": d.owner,
        "state": state,
        "schema_digest": "0x" + d.schema_digest.hex(),
        "rows": d.rows,
        "price": d.price,
        "expiry": d.expiry,
        "budget_kind": d.budget_kind.name.lower(),
        "budget": d.budget / MICRO,
        "budget_left": d.budget_left / MICRO,
        "budget_micro": d.budget,
        "budget_left_micro": d.budget_left,
        "programs": names,
        "sample": d.locator,
    }


def _human(j: dict[str, Any]) -> str:
    sym = "ε" if j["budget_kind"] == "epsilon" else "ρ"
    return (
        f"dataset {j['dataset_id']} ({j['state']}): owner {j['owner']}, {j['rows']} rows, "
        f"price {fmt_eth(j['price'])}, expires {j['expiry']}\n"
        f"  budget left {sym} {j['budget_left']:g} of {j['budget']:g}; "
        f"programs: {', '.join(j['programs'])}\n"
        f"  schema {j['schema_digest']}; sample: {j['sample'] or '-'}"
    )


def _owner_chain(c: Ctx) -> ChainClient:
    return c.chain(c.account())


@data.command("publish")
@click.option("--schema", type=click.Path(path_type=Path, dir_okay=False), help="Schema file.")
@click.option("--schema-digest", help="Or its digest (0x + 64 hex).")
@click.option("--rows", type=click.IntRange(min=0), required=True, help="Declared row count.")
@click.option("--price", type=AMOUNT, required=True, help="Price per task, e.g. 0.01ether.")
@click.option("--expires-in", default="30d", show_default=True, help="e.g. 3600, 12h, 30d.")
@click.option("--program", "programs", multiple=True, help="Allowed program (repeatable).")
@click.option("--family", "families", multiple=True, help="Allow every program of a family.")
@click.option("--epsilon", help="Total pure-DP budget ε (never raised later).")
@click.option("--rho", help="Or a total zCDP budget ρ.")
@click.option("--sample", "locator", default="", help="Where the public sample data is.")
@pass_ctx
def publish(
    c: Ctx,
    schema: Path | None,
    schema_digest: str | None,
    rows: int,
    price: int,
    expires_in: str,
    programs: tuple[str, ...],
    families: tuple[str, ...],
    epsilon: str | None,
    rho: str | None,
    locator: str,
) -> None:
    """Register a dataset owned by this account; prints its id.

    \b
    Examples:
      dnode --home ~/a data publish --schema patients.json --rows 1000 --price 0.01ether \\
          --family stats --epsilon 1
      dnode --home ~/a data publish --schema-digest 0x… --rows 500 --price 0.02ether \\
          --program mpc.mean --rho 0.5 --expires-in 90d --sample https://example.org/mock.csv
    """
    digest = digest_of(schema, schema_digest)
    ids = program_ids(programs, families)
    if not ids:
        raise CliError("allow at least one --program or --family")
    kind, budget = budget_of(epsilon, rho)
    check_locator(locator)
    chain = _owner_chain(c)
    expiry = chain.block_timestamp() + parse_duration(expires_in)
    ds = chain.register_dataset(
        schema_digest=digest,
        rows=rows,
        price=price,
        expiry=expiry,
        programs=ids,
        budget=budget,
        budget_kind=kind,
        locator=locator,
    )
    j = describe(chain.dataset_info(ds), chain.block_timestamp())
    c.emit(j, f"published dataset {ds}\n" + _human(j))


@data.command("update")
@click.argument("dataset_id", type=click.IntRange(min=1))
@click.option("--price", type=AMOUNT, help="New price per task.")
@click.option("--expires-in", help="New expiry, from now: e.g. 12h, 30d.")
@click.option("--program", "programs", multiple=True, help="Replace the allowed programs.")
@click.option("--family", "families", multiple=True, help="... by family.")
@click.option("--sample", "locator", help="New sample locator.")
@pass_ctx
def update(
    c: Ctx,
    dataset_id: int,
    price: int | None,
    expires_in: str | None,
    programs: tuple[str, ...],
    families: tuple[str, ...],
    locator: str | None,
) -> None:
    """Change a dataset's price, expiry, programs or sample (the budget cannot change).

    \b
    Examples:
      dnode --home ~/a data update 1 --price 0.02ether --expires-in 60d
      dnode --home ~/a data update 1 --family stats --sample file:///srv/mock.csv
    """
    ids = program_ids(programs, families) if programs or families else None
    check_locator(locator)
    chain = _owner_chain(c)
    expiry = None if expires_in is None else chain.block_timestamp() + parse_duration(expires_in)
    chain.update_dataset(dataset_id, price=price, expiry=expiry, programs=ids, locator=locator)
    j = describe(chain.dataset_info(dataset_id), chain.block_timestamp())
    c.emit(j, "updated\n" + _human(j))


@data.command("retire")
@click.argument("dataset_id", type=click.IntRange(min=1))
@pass_ctx
def retire(c: Ctx, dataset_id: int) -> None:
    """Retire a dataset for good: no new task may name it (posted ones still settle).

    \b
    Examples:
      dnode --home ~/a data retire 1
    """
    chain = _owner_chain(c)
    chain.retire_dataset(dataset_id)
    c.emit({"dataset_id": dataset_id, "state": "retired"}, f"dataset {dataset_id} retired")


@data.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include retired and expired datasets.")
@pass_ctx
def list_cmd(c: Ctx, show_all: bool) -> None:
    """The catalogue: price, expiry, allowed programs and privacy budget left.

    \b
    Examples:
      dnode data list
      dnode --json data list --all
    """
    chain = c.chain()
    now = chain.block_timestamp()
    rows = [describe(d, now) for d in chain.datasets()]
    if not show_all:
        rows = [r for r in rows if r["state"] == "live"]
    c.emit({"datasets": rows}, "\n".join(_human(r) for r in rows) or "no datasets")


@data.command("show")
@click.argument("dataset_id", type=click.IntRange(min=1))
@pass_ctx
def show(c: Ctx, dataset_id: int) -> None:
    """One dataset in full.

    \b
    Examples:
      dnode data show 1
      dnode --json data show 1
    """
    chain = c.chain()
    d = chain.dataset_info(dataset_id)
    if not d.exists:
        raise CliError(f"dataset {dataset_id} does not exist")
    j = describe(d, chain.block_timestamp())
    j["spent"] = d.spent / MICRO
    j["ledger"] = ledger(chain, dataset_id)
    sym = "ε" if j["budget_kind"] == "epsilon" else "ρ"
    lines = [f"  task {e['task_id']}: {sym} {e['cost']:g} {e['state']}" for e in j["ledger"]]
    c.emit(j, "\n".join([_human(j), f"  spent {sym} {j['spent']:g}; per task:", *lines]))


def ledger(chain: ChainClient, dataset_id: int) -> list[dict[str, Any]]:
    """Every task that charged the dataset's privacy budget (TaskDatasets events), with what
    became of the charge: ``charged`` (the task has not ended or is not settled: counted as
    spent), ``spent`` (it delivered a result: the owner was paid), ``released`` (refunded
    before any committee formed: the budget came back, DatasetRefunded), ``refunded, kept``
    (refunded after its committee formed: its seats may have opened outputs, so the charge
    stays)."""
    out: dict[int, dict[str, Any]] = {}
    for ev in chain.events(chain.deployment.deploy_block):
        a = ev.args
        if ev.name == "TaskDatasets":
            for i, cost in zip(a["dataset_ids"], a["costs"], strict=True):
                if int(i) == dataset_id:
                    t = int(a["task_id"])
                    out[t] = {"task_id": t, "cost": int(cost) / MICRO, "state": "charged"}
        elif ev.name in ("DatasetRefunded", "DatasetPaid") and int(a["dataset_id"]) == dataset_id:
            e = out.get(int(a["task_id"]))
            if e is not None and ev.name == "DatasetPaid":
                e["state"] = "spent"
            elif e is not None:  # refunded: released unless its committee had formed
                e["state"] = "released" if int(a["released"]) else "refunded, kept"
    return [out[k] for k in sorted(out)]


@data.command("settle")
@click.argument("task_id", type=click.IntRange(min=1))
@pass_ctx
def settle(c: Ctx, task_id: int) -> None:
    """Settle an ended task's dataset payments (anyone, once): owners are credited their
    price when it has a result, the requester is refunded (and the budget released) when it
    was refunded. Owners then take their credits with the usual withdrawal.

    \b
    Examples:
      dnode data settle 4             # anyone, once the task has ended
    """
    chain = c.chain(c.account())
    entries = chain.pending_datasets(task_id)
    chain.settle_datasets(task_id)
    status = chain.task_status(task_id).name.lower()
    paid = sum(e.price for e in entries)
    c.emit(
        {"task_id": task_id, "status": status, "settled": paid, "datasets": len(entries)},
        f"task {task_id} ({status}): settled {fmt_eth(paid)} over {len(entries)} dataset(s)",
    )


SAMPLE_LIMIT = 64 << 20  # bytes a sample may have


def fetch_sample(locator: str, limit: int = SAMPLE_LIMIT) -> bytes:
    """The public sample at ``locator``: ``file://PATH`` or ``http(s)://URL`` (no secrets
    travel: it is public mock data a requester develops against before paying)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = urllib.parse.urlparse(locator)
    if url.scheme == "file":
        path = Path(urllib.parse.unquote(url.path))
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise CliError(f"cannot read the sample {locator}: {e.strerror}") from None
    elif url.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(locator, timeout=30) as r:  # noqa: S310 - scheme checked
                data = r.read(limit + 1)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise CliError(f"cannot fetch the sample {locator}: {e}") from None
    else:
        raise CliError(f"sample locator {locator!r}: only file:// and http(s):// are supported")
    if len(data) > limit:
        raise CliError(f"the sample at {locator} is larger than {limit} bytes")
    return data


@data.command("sample")
@click.argument("dataset_id", type=click.IntRange(min=1))
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write it here [stdout]."
)
@pass_ctx
def sample(c: Ctx, dataset_id: int, out: Path | None) -> None:
    """Fetch a dataset's public sample (mock) data, to develop a task before paying.

    \b
    Examples:
      dnode data sample 1
      dnode data sample 1 --out mock.csv
    """
    chain = c.chain()
    d = chain.dataset_info(dataset_id)
    if not d.exists:
        raise CliError(f"dataset {dataset_id} does not exist")
    if not d.locator:
        raise CliError(f"dataset {dataset_id} publishes no sample")
    data = fetch_sample(d.locator)
    if out is None:
        if c.as_json:
            c.emit({"dataset_id": dataset_id, "sample": d.locator, "bytes": len(data),
                    "text": data.decode(errors="replace")}, "")  # fmt: skip
        else:
            click.echo(data.decode(errors="replace"), nl=False)
        return
    try:
        out.write_bytes(data)
    except OSError as e:
        raise CliError(f"cannot write {out}: {e.strerror}") from None
    c.emit(
        {"dataset_id": dataset_id, "sample": d.locator, "bytes": len(data), "out": str(out)},
        f"dataset {dataset_id}: {len(data)} bytes of sample data from {d.locator} -> {out}",
    )


COMMANDS = [data]
