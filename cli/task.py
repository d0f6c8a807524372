"""Requester and data-owner commands: post, contribute, status, result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import trio
from eth_utils import is_address, to_checksum_address

from dnode.cli import he, market, private
from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.owner import notice_lines, owner_notices
from dnode.cli.programs import program_args, table_params
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.cli.wait import _wait_for
from dnode.contracts.client import TERMINAL_STATUSES, ChainClient, TaskInfo, TaskStatus
from dnode.node import peer_client
from dnode.node.aggregation import DEFAULT_MIN_OWNERS, MinAggregation
from dnode.node.errors import NodeError
from dnode.oracle.reader import read
from dnode.scheduler.candidates import candidates_for, seed_state
from dnode.scheduler.committee_check import verified_committee
from dnode.scheduler.programs import (
    MAX_COMMITTEE,
    MIN_COMMITTEE,
    TaskParams,
    get_program,
    program_by_id,
)

TERMINAL = set(TERMINAL_STATUSES)


@click.group("task")
def task() -> None:
    """Post compute tasks, contribute inputs, follow them and read attested results.

    \b
    Examples:
      dnode --home ~/req task post --program mpc.mean --owner 0xA.. --owner 0xB.. \\
          --reward 0.3ether --bootstrap /ip4/…/p2p/…
      dnode task status 1
      dnode task result 1 --wait 300
    """


def _aggregation_options(f: Any) -> Any:
    """--min-owners / --min-values / --allow-single-owner (see node.aggregation)."""
    f = click.option(
        "--allow-single-owner",
        is_flag=True,
        help="Allow a table task with one data owner: its result then PUBLISHES statistics "
        "of that owner's data on chain.",
    )(f)
    f = click.option(
        "--min-values",
        type=click.IntRange(min=1),
        default=None,
        help="Fewest values all owners together must contribute [= --min-owners].",
    )(f)
    f = click.option(
        "--min-owners",
        type=click.IntRange(min=1),
        default=None,
        help=f"Fewest distinct data owners that must contribute; nodes decline below it "
        f"[{DEFAULT_MIN_OWNERS}; 1 with --allow-single-owner].",
    )(f)
    return f


COLUMN_HELP = (
    "A table column the task uses: NAME:int:MIN:MAX, NAME:fixed:SCALE:MIN:MAX, NAME:cat:A|B|C "
    "or NAME:id (repeatable; default value:fixed:6:-1e9:1e9). Ranges are public."
)
PROGRAM_FLAGS = {"ignore_unknown_options": True, "allow_extra_args": True}


@task.command("post", context_settings=PROGRAM_FLAGS)
@click.option("--program", required=True, help="Program, e.g. mpc.mean (see dnode programs).")
@click.option(
    "--owner",
    "owners",
    multiple=True,
    help="Table programs: address of a data owner who will contribute (repeatable, required).",
)
@click.option(
    "--dataset",
    "datasets",
    type=click.IntRange(min=1),
    multiple=True,
    help="Run over a published dataset (repeatable; see dnode data list): its owner "
    "contributes, and posting escrows its price and charges --privacy-cost to its budget.",
)
@click.option(
    "--privacy-cost",
    "privacy_costs",
    multiple=True,
    help="Privacy budget the task spends of each --dataset (ε or ρ, its kind): one value "
    "for all, or one per dataset in order.",
)
@click.option("--column", "columns", multiple=True, help=COLUMN_HELP)
@click.option(
    "--schema", type=click.Path(dir_okay=False, path_type=Path), help="Columns as a JSON file."
)
@click.option(
    "--committee",
    "committee_size",
    default=3,
    show_default=True,
    help=f"Committee size m ({MIN_COMMITTEE}..{MAX_COMMITTEE}).",
)
@click.option("--reward", type=AMOUNT, required=True, help="Escrowed reward, e.g. 0.3ether.")
@click.option("--seat-timeout", default=120, show_default=True, help="Seconds to fill the seats.")
@click.option(
    "--report-timeout",
    default=600,
    show_default=True,
    help="Seconds after posting by which the result must be reported.",
)
@click.option(
    "--input-timeout",
    default=120,
    show_default=True,
    help="Seconds nodes wait for the data owners' shares once the committee is formed.",
)
@click.option(
    "--max-rows",
    default=1 << 16,
    show_default=True,
    help="Most rows all owners together may contribute (bounds every sum).",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="DNODE_BOOTSTRAP",
    help="Peer multiaddr to announce the task through (repeatable).",
)
@click.option(
    "--data",
    multiple=True,
    help="HE: file to encrypt locally (CSV or .npy) as input x; or x=FILE / y=FILE.",
)
@click.option("--args", "args_opt", help="Program arguments: a JSON file or '{...}'.")
@click.option(
    "--arg",
    "arg_items",
    multiple=True,
    help="HE: one program argument NAME=JSON or NAME=@FILE.csv, e.g. matrix=@weights.csv.",
)
@click.option("--scheme", type=click.Choice(["ckks", "bfv"]), default="ckks", show_default=True)
@_aggregation_options
@click.option(
    "--private-result",
    is_flag=True,
    help="Only this account can read the result: the committee seals its output shares to "
    "a key derived from it; the chain holds their digest (table programs).",
)
@click.option(
    "--upload/--no-upload",
    default=True,
    show_default=True,
    help="HE: wait for the committee and push it the public context and ciphertexts.",
)
@click.pass_context
def post(
    cctx: click.Context,
    program: str,
    owners: tuple[str, ...],
    datasets: tuple[int, ...],
    privacy_costs: tuple[str, ...],
    columns: tuple[str, ...],
    schema: Path | None,
    committee_size: int,
    reward: int,
    seat_timeout: int,
    report_timeout: int,
    input_timeout: int,
    max_rows: int,
    bootstrap: tuple[str, ...],
    data: tuple[str, ...],
    args_opt: str | None,
    arg_items: tuple[str, ...],
    scheme: str,
    private_result: bool,
    upload: bool,
    min_owners: int | None,
    min_values: int | None,
    allow_single_owner: bool,
) -> None:
    """Escrow a reward and post a task; announce its parameters to the network.

    Table programs take the program's own flags after the common ones (e.g. --q 0.25,0.75
    for mpc.quantiles; see dnode programs NAME). HE programs encrypt --data locally, keep
    the secret key under HOME/he-keys, and push the public context and ciphertexts to the
    committee once it forms.

    \b
    Examples:
      dnode --home ~/req task post --program mpc.mean --owner 0xA.. --owner 0xB.. \\
          --reward 0.3ether --bootstrap /ip4/…/p2p/…
      dnode task post --program mpc.quantiles --column age:int:0:120 --q 0.25,0.5,0.75 \\
          --owner 0xA.. --owner 0xB.. --reward 0.3ether --bootstrap /ip4/…/p2p/…
      dnode task post --program he.mean --data values.csv --reward 0.3ether --bootstrap /ip4/…/p2p/…
      dnode task post --program mpc.mean --column age:int:0:120 --epsilon 0.5 --dataset 1 \\
          --dataset 2 --reward 0.3ether --bootstrap /ip4/…/p2p/…
    """
    c = cctx.find_object(Ctx)
    assert c is not None
    prog = get_program(program)
    if not MIN_COMMITTEE <= committee_size <= MAX_COMMITTEE:
        raise CliError(
            f"committee size must be between {MIN_COMMITTEE} and {MAX_COMMITTEE} "
            f"(an honest majority needs at least 3), not {committee_size}"
        )
    if not 0 < seat_timeout < report_timeout:
        raise CliError("need 0 < --seat-timeout < --report-timeout")
    if not prog.uses_table:  # the requester's own encrypted data (HE)
        if owners or columns or schema or cctx.args:
            raise CliError(f"{prog.name} takes no --owner/--column: the requester encrypts --data")
        if private_result:
            raise CliError(f"{prog.name}'s results are already encrypted to your own key")
        return he.post_he(
            c,
            prog,
            committee_size=committee_size,
            reward=reward,
            seat_timeout=seat_timeout,
            report_timeout=report_timeout,
            input_timeout=input_timeout,
            bootstrap=bootstrap,
            data=data,
            args_opt=args_opt,
            arg_items=arg_items,
            scheme=scheme,
            upload=upload,
        )
    if data or arg_items:
        raise CliError(f"--data/--arg are for programs on encrypted data, not {prog.name}")
    acct = c.account()
    chain = c.chain(acct)
    costs: list[int] = []
    args = program_args(prog, cctx.args, args_opt)
    derived = market.asks_dp(args)
    if datasets:
        if owners:
            raise CliError("give --dataset or --owner, not both: a dataset's owner contributes")
        owners, costs = market.dataset_owners(chain, datasets, privacy_costs, derived=derived)
    elif privacy_costs:
        raise CliError("--privacy-cost needs --dataset")
    minimum = _min_aggregation(owners, min_owners, min_values, allow_single_owner)
    params = _table_params(
        prog.name, owners, columns, schema, args,
        input_timeout, max_rows, minimum, private.result_key(c) if private_result else "",
    )  # fmt: skip
    if datasets and derived:  # the composed cost of the noisy outputs, per dataset budget
        costs = market.dp_costs(chain, datasets, params)
    now = max(int(time.time()), chain.block_timestamp())
    if datasets:
        task_id = chain.post_data_task(
            prog.program_id,
            params.digest,
            datasets=list(datasets),
            costs=costs,
            reward=reward,
            seat_deadline=now + seat_timeout,
            compute_window=report_timeout - seat_timeout,
            capability=prog.capability_bit,
            committee_size=committee_size,
        )
    else:
        task_id = chain.post_task(
            prog.program_id,
            params.digest,
            capability=prog.capability_bit,
            committee_size=committee_size,
            seat_deadline=now + seat_timeout,
            report_deadline=now + report_timeout,
            reward=reward,
        )
    kept = _params_file(c, chain, task_id)
    try:  # kept to shape and label the result later (dnode task result)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(params.canonical())
    except OSError:
        pass
    guarantee = prog.guarantee(params)
    announced = 0
    if bootstrap:
        try:
            announced = trio.run(peer_client.announce, list(bootstrap), task_id, params)
        except NodeError as e:  # posted and paid: say which task and how to announce it
            raise CliError(
                f"task {task_id} is posted but its params were not announced ({e}); retry with "
                f"`dnode task announce {task_id} --params {kept} --bootstrap ADDR`"
            ) from None
    c.emit(
        {
            "task_id": task_id,
            "program": prog.name,
            "params_digest": "0x" + params.digest.hex(),
            "reward": reward,
            "announced_to": announced,
            "params": params.to_dict(),
            "datasets": list(datasets),
            "privacy_costs": [x / 1e6 for x in costs],
            "dp": guarantee,
            "tx": chain.last_tx.tx_hash if chain.last_tx else None,
        },
        f"posted task {task_id} ({prog.name}, committee {committee_size}, reward {fmt_eth(reward)})"
        + (f"; {dp_line(guarantee)}" if guarantee else "")
        + (
            f"; announced to {announced} peer(s)"
            if bootstrap
            else "; not announced (no --bootstrap): nodes will not see its parameters"
        ),
    )


def dp_line(g: dict[str, Any]) -> str:
    """One line of a DP guarantee (scheduler.dp.Plan.guarantee)."""
    scales = ", ".join(f"{r['name']} scale {r['scale']} (L1 sensitivity {r['sensitivity_l1']})"
                       for r in g["releases"])  # fmt: skip
    return f"differential privacy: {g['statement']}; {g['mechanism']}; {scales}"


def _table_params(
    program: str,
    owners: tuple[str, ...],
    columns: tuple[str, ...],
    schema: Path | None,
    args: dict[str, object],
    input_timeout: int,
    max_rows: int,
    minimum: MinAggregation,
    result_key: str = "",
) -> TaskParams:
    """The params of a table program, from the command-line options (one-line errors)."""
    prog = get_program(program)
    if not prog.uses_table:
        raise CliError(f"{prog.name} runs on encrypted data: post it with dnode task post --data")
    for o in owners:
        if not is_address(o):
            raise CliError(f"data owner {o!r} is not an address")
    owners = tuple(to_checksum_address(o) for o in owners)
    return table_params(
        prog, owners, columns, schema, args, input_timeout, max_rows, minimum.to_extra(),
        result_key,
    )  # fmt: skip


def _min_aggregation(
    owners: tuple[str, ...], min_owners: int | None, min_values: int | None, allow_single: bool
) -> MinAggregation:
    """The task's minimum aggregation; refuses one that would publish a single owner's data."""
    k = min_owners if min_owners is not None else (1 if allow_single else DEFAULT_MIN_OWNERS)
    if k < 2 and not allow_single:
        raise CliError("--min-owners 1 publishes one owner's data: add --allow-single-owner")
    if owners and len(set(o.lower() for o in owners)) < k:
        if len(owners) == 1:
            raise CliError(
                "a task with one data owner publishes a result of that owner's data alone; "
                "pass --allow-single-owner to post it anyway"
            )
        raise CliError(f"{len(owners)} data owners cannot meet --min-owners {k}")
    v = min_values if min_values is not None else k
    if v < k:
        raise CliError(f"--min-values {v} is below --min-owners {k}")
    return MinAggregation(owners=k, values=v)


@task.command("params", context_settings=PROGRAM_FLAGS)
@click.option("--program", required=True, help="Table program, e.g. mpc.mean.")
@click.option(
    "--owner", "owners", multiple=True, help="Address of a data owner (repeatable, required)."
)
@click.option("--column", "columns", multiple=True, help=COLUMN_HELP)
@click.option(
    "--schema", type=click.Path(dir_okay=False, path_type=Path), help="Columns as a JSON file."
)
@click.option("--args", "args_opt", help="Program arguments: a JSON file or '{...}'.")
@click.option("--input-timeout", default=120, show_default=True)
@click.option("--max-rows", default=1 << 16, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write the canonical params to (announce them with dnode task announce).",
)
@_aggregation_options
@click.pass_context
def params_cmd(
    cctx: click.Context,
    program: str,
    owners: tuple[str, ...],
    columns: tuple[str, ...],
    schema: Path | None,
    args_opt: str | None,
    input_timeout: int,
    max_rows: int,
    out: Path,
    min_owners: int | None,
    min_values: int | None,
    allow_single_owner: bool,
) -> None:
    """Write a table task's params without posting it, and print their digest: what a consumer
    contract passes to post_task (e.g. the example PriceFeed's request).

    \b
    Examples:
      dnode task params --program mpc.mean --owner 0xA.. --owner 0xB.. --out p.json
    """
    c = cctx.find_object(Ctx)
    assert c is not None
    prog = get_program(program)
    args = program_args(prog, cctx.args, args_opt)
    minimum = _min_aggregation(owners, min_owners, min_values, allow_single_owner)
    params = _table_params(program, owners, columns, schema, args, input_timeout, max_rows, minimum)
    try:
        out.write_bytes(params.canonical())
    except OSError as e:
        raise CliError(f"cannot write {out}: {e.strerror or e}") from None
    digest = "0x" + params.digest.hex()
    c.emit(
        {
            "program": params.program,
            "program_id": "0x" + get_program(params.program).program_id.hex(),
            "params_digest": digest,
            "file": str(out),
        },
        f"params of {params.program} written to {out}; params digest {digest}",
    )


@task.command("announce")
@click.argument("task_id", type=click.IntRange(min=1))
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The task's params (from dnode task params --out, or task post --json).",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="DNODE_BOOTSTRAP",
    required=True,
    help="Peer multiaddr to announce the task through (repeatable).",
)
@pass_ctx
def announce(c: Ctx, task_id: int, params_file: Path, bootstrap: tuple[str, ...]) -> None:
    """Announce the params of an already posted task, e.g. one a consumer contract posted.

    Anyone holding the params may announce them: nodes accept them only if they hash to the
    task's on-chain params digest, which only the requester chose.

    \b
    Examples:
      dnode task announce 4 --params p.json --bootstrap /ip4/…/p2p/…
    """
    try:
        raw = params_file.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {params_file}: {e.strerror or e}") from None
    params = TaskParams.from_bytes(raw)
    info = c.chain().task_info(task_id)
    if info.status == TaskStatus.NONE:
        raise CliError(f"task {task_id} does not exist")
    if params.digest != info.params_digest:
        raise CliError(
            f"{params_file} hashes to 0x{params.digest.hex()}, task {task_id} was posted with "
            f"params digest 0x{info.params_digest.hex()}"
        )
    if info.status in TERMINAL:
        raise CliError(f"task {task_id} is {info.status.name.lower()}: nothing to announce")
    accepted = trio.run(peer_client.announce, list(bootstrap), task_id, params)
    c.emit(
        {"task_id": task_id, "params_digest": "0x" + params.digest.hex(), "announced_to": accepted},
        f"task {task_id}: params announced to {accepted} peer(s)",
    )


@task.command("contribute")
@click.argument("task_id", type=int)
@click.option(
    "--inputs",
    type=click.Path(path_type=Path),
    required=True,
    help="Your table: a CSV with a header naming the task's columns (or one number per line "
    "for a one-column task); Parquet if pyarrow is installed.",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="DNODE_BOOTSTRAP",
    required=True,
    help="Peer multiaddr to reach the committee through (repeatable).",
)
@click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait for the committee to form."
)
@click.option(
    "--round",
    "round_",
    type=click.IntRange(0, 1),
    default=None,
    help="0: the task's committee; 1: the re-execution committee of a disputed task "
    "(fresh shares for its m + 2 seats). Default: 1 if the task is disputed, else 0.",
)
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The task's params (checked against the chain) to check the file before going online "
    "[default: kept by task post, else fetched from peers].",
)
@pass_ctx
def contribute(
    c: Ctx,
    task_id: int,
    inputs: Path,
    bootstrap: tuple[str, ...],
    timeout: float,
    round_: int | None,
    params_file: Path | None,
) -> None:
    """As a data owner: secret-share your inputs locally and send each seat only its share.

    \b
    Examples:
      dnode --home ~/a task contribute 1 --inputs my-values.csv --bootstrap /ip4/…/p2p/…
    """
    acct = c.account()
    chain = c.chain(acct)
    info = chain.task_info(task_id)
    if info.status == TaskStatus.NONE:
        raise CliError(f"task {task_id} does not exist")
    rnd = round_
    if rnd is None:
        rnd = 1 if info.status in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING) else 0
    forming = TaskStatus.RECOMPUTING if rnd else TaskStatus.COMPUTING
    committee = "re-execution committee" if rnd else "committee"
    local = _known_params(c, chain, task_id, params_file)
    if local is not None and local.digest != info.params_digest:
        if params_file is not None:
            raise CliError(f"--params {params_file} are not the params of task {task_id}")
        local = None  # a stale local copy: ask the peers

    def encode(params: TaskParams) -> list[int]:
        if not params.is_owner(acct.address):
            raise CliError(f"{acct.address} is not a data owner of task {task_id}")
        # encode once, before waiting: a malformed file fails now, not after the committee
        return params.encode_table(inputs, acct.address)

    early = encode(local) if local is not None else None  # offline: before any connection
    rows = 0

    async def flow() -> list[str]:
        nonlocal rows
        # one libp2p host for the whole command: fetch the params, wait, deliver
        async with peer_client.ephemeral_host(list(bootstrap)) as host:
            if local is not None and early is not None:
                params, encoded = local, early
            else:
                params = await peer_client.fetch_params(host, task_id, info.params_digest)
                encoded = encode(params)
            rows = len(encoded) // max(params.spec.width(params), 1)
            st = await trio.to_thread.run_sync(
                _wait_for, c, chain, task_id, {forming}, timeout, f"waiting for the {committee}"
            )
            if st != forming:
                raise CliError(
                    f"task {task_id} is {st.name.lower()}: the {committee} accepts no inputs"
                )
            # refuse (one line, non-zero exit) a committee the ranked sortition does not allow
            await trio.to_thread.run_sync(
                verified_committee, chain, task_id, rnd, params.owners, timeout
            )
            return await peer_client.contribute_to_committee(
                host, chain, acct, task_id, params, encoded, rnd
            )

    peers = trio.run(flow)
    c.emit(
        {
            "task_id": task_id,
            "round": rnd,
            "owner": acct.address,
            "rows": rows,
            "values": rows,
            "seats": peers,
        },
        f"task {task_id}: {rows} row(s) secret-shared to {len(peers)} seats "
        f"of the {committee} "
        "(no node received a plaintext value)",
    )


STATUS_NAMES = [s.name.lower() for s in TaskStatus if s != TaskStatus.NONE]


@task.command("status")
@click.argument("task_id", type=int)
@click.option(
    "--until",
    "until",
    multiple=True,
    type=click.Choice(STATUS_NAMES),
    help="Wait until the task is in this status (repeatable; a final status also ends the "
    "wait), then show it. Scripts wait with one command instead of polling.",
)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="For --until.")
@click.option(
    "--bootstrap",
    multiple=True,
    help="Peer multiaddr to ask for the data owners' notices: which owner agents approved, "
    "which wait for their owner, and why one refused (repeatable).",
)
@pass_ctx
def status(
    c: Ctx, task_id: int, until: tuple[str, ...], timeout: float, bootstrap: tuple[str, ...]
) -> None:
    """Show a task's on-chain state; for an open task, why it is still waiting (the sortition
    as the chain has it now: eligible candidates drawn, and why others were skipped); with
    --bootstrap, the data owners' decisions.

    \b
    Examples:
      dnode task status 1
      dnode task status 1 --until finalized --timeout 3600
      dnode --json task status 1 --bootstrap /ip4/…/p2p/…
    """
    chain = c.chain()
    t = chain.task_info(task_id)
    if t.status == TaskStatus.NONE:
        raise CliError(f"task {task_id} does not exist")
    if until:
        want = {TaskStatus[name.upper()] for name in until}
        _wait_for(c, chain, task_id, want, timeout, f"waiting for {' or '.join(until)}")
        t = chain.task_info(task_id)
    seats = chain.seats(task_id)
    now = chain.block_timestamp()
    extra: dict[str, object] = {}
    opening = ""
    if t.status == TaskStatus.OPEN:
        opening, extra = _open_note(chain, t)
    refund = REFUND_REASONS.get(t.refund_reason, t.refund_reason or "no reason recorded")
    declines = _declines(chain, task_id)
    owners = owner_notices(task_id, bootstrap) if bootstrap else None
    if owners is not None:
        extra["owners"] = owners
    note = {
        TaskStatus.OPEN: opening,
        TaskStatus.COMPUTING: "committee formed; computing",
        TaskStatus.REPORTED: "result reported; in challenge window",
        TaskStatus.FINALIZED: "finalized; rewards credited",
        TaskStatus.REFUNDED: f"refunded to the requester: {refund}",
        TaskStatus.DISPUTED: "result disputed; waiting for a re-execution committee",
        TaskStatus.RECOMPUTING: "result disputed; re-execution committee computing",
        TaskStatus.OVERTURNED: "dispute upheld: re-executed result is final, signers unpaid",
    }[t.status]
    c.emit(
        {
            "task_id": task_id,
            "status": t.status.name.lower(),
            "note": note,
            "requester": t.requester,
            "committee_size": t.committee_size,
            "quorum": t.quorum,
            "seats": seats,
            "reward": t.reward,
            "seat_deadline": t.seat_deadline,
            "report_deadline": t.report_deadline,
            "reported_at": t.reported_at,
            "result_digest": "0x" + t.result_digest.hex(),
            "callback": t.callback,
            "callback_gas": t.callback_gas,
            "callback_ok": t.callback_ok,
            "chain_time": now,
            "seed_block": t.seed_block,
            "refund_reason": t.refund_reason,
            "declines": declines,
            **extra,
        },
        f"task {task_id}: {t.status.name.lower()} ({note})\n"
        f"reward {fmt_eth(t.reward)}, committee {t.seats_taken}/{t.committee_size}, "
        f"quorum {t.quorum}\nseats: {', '.join(seats) or '-'}"
        + (f"\ncallback: {t.callback} (gas cap {t.callback_gas})" if t.callback else "")
        + "".join(
            f"\ndeclined: round {d['round']} seat {d['seat']} ({d['node']}): {d['reason']}"
            for d in declines
        )
        + notice_lines(owners),
    )


def _declines(chain: ChainClient, task_id: int) -> list[dict[str, Any]]:
    """Every seat given up, with the reason its node stated (e.g. a minimum not met)."""
    return [
        {
            "round": int(e.args["round"]),
            "seat": int(e.args["seat"]),
            "node": e.args["node"],
            "reason": e.args["reason"],
        }
        for e in chain._task_logs(task_id)
        if e.name == "SeatDeclined"
    ]


REFUND_REASONS = {
    "sortition: seats not filled": "not enough eligible candidates joined before the seat deadline",
    "sortition: seed expired": "the committee did not form within 256 blocks of the seed block",
    "market: report deadline missed": "the committee did not report before the report "
    "deadline (seats that neither reported nor declined were slashed)",
    "market: too many declines": "so many seats declined that no quorum was possible",
}
STATUS_SCAN = 256  # draws `task status` examines


def _open_note(chain: ChainClient, t: TaskInfo) -> tuple[str, dict[str, object]]:
    """Why an open task is still waiting, from the sortition as the chain has it now."""
    m = t.committee_size
    cands = candidates_for(chain, t)
    if cands is None:
        _, since = seed_state(chain, t.seed_block)
        if since <= 0:
            return (
                f"waiting for {m} of {m} seats: the sortition seed (block {t.seed_block}) is "
                "not mined yet",
                {},
            )
        return (
            f"waiting for {m} of {m} seats: the sortition seed (block {t.seed_block}) is more "
            "than 256 blocks old; the committee can no longer form (cancel to refund)",
            {},
        )
    r = cands.ranking(limit=STATUS_SCAN)
    offer = cands.pool.offer
    eligible = len(r.candidates)
    extra: dict[str, object] = {
        "offer_per_seat": offer,
        "window": cands.pool.window,
        "eligible_candidates": r.addresses(),
        "skipped": dict(r.rejected),
    }
    if eligible >= m:
        return (
            f"waiting for {m} of {m} seats: {eligible} eligible candidates drawn; the committee "
            "binds once the best-ranked of them have joined",
            extra,
        )
    why = [f"waiting for {m - eligible} of {m} seats: only {eligible} eligible candidate(s) "
           f"among the nodes drawn"]  # fmt: skip
    kinds = list(r.rejected.values())
    priced = sum(k.startswith("price") for k in kinds)
    if priced:
        why.append(f"no eligible node offers price <= {fmt_eth(offer)} per seat "
                   f"({priced} drawn node(s) ask more)")  # fmt: skip
    full = sum(k.startswith("at capacity") for k in kinds)
    if full:
        why.append(f"{full} drawn node(s) at capacity")
    poor = sum(k.startswith("not enough free stake") for k in kinds)
    if poor:
        why.append(f"{poor} drawn node(s) lack free stake for the collateral")
    other = len(kinds) - priced - full - poor
    if other:
        why.append(f"{other} drawn node(s) excluded or lacking the capability")
    if not r.rejected and not r.candidates:
        why.append("no node is staked")
    return "; ".join(why), extra


def _params_file(c: Ctx, chain: ChainClient, task_id: int) -> Path:
    """Where a requester keeps the params of a task it posted (to label its result)."""
    return c.home / "params" / f"{chain.deployment.address.lower()}-{task_id}.json"


def _known_params(
    c: Ctx, chain: ChainClient, task_id: int, given: Path | None
) -> TaskParams | None:
    path = given or _params_file(c, chain, task_id)
    try:
        return TaskParams.from_bytes(path.read_bytes())
    except OSError:
        if given is not None:
            raise CliError(f"cannot read --params {given}") from None
        return None


@task.command("result")
@click.argument("task_id", type=int)
@click.option("--wait", "wait_s", default=0.0, help="Seconds to wait for the attested result.")
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The task's params, to shape and label the values [default: kept by task post].",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="DNODE_BOOTSTRAP",
    help="Private results: peer multiaddr to fetch the result blob through (repeatable).",
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="ml.kmeans on 2 columns: draw the centroids and cluster sizes to this PNG.",
)
@pass_ctx
def result(
    c: Ctx,
    task_id: int,
    wait_s: float,
    params_file: Path | None,
    bootstrap: tuple[str, ...],
    plot_file: Path | None = None,
) -> None:
    """Read the attested result from the oracle contract and check it against its digest;
    decode it with the program's codec (shaped and labelled when the params are known).

    Private (HE) results: fetch the result ciphertext from a committee member, check it
    against the attested digest, and decrypt it with the secret key kept under HOME/he-keys.

    \b
    Examples:
      dnode task result 1 --wait 300
      dnode --json task result 2 --plot clusters.png
      dnode --home ~/req task result 3 --wait 300 --bootstrap /ip4/…/p2p/…
    """
    chain = c.chain()
    if wait_s:
        _wait_for(
            c,
            chain,
            task_id,
            {TaskStatus.REPORTED, TaskStatus.FINALIZED},
            wait_s,
            "waiting for the attested result",
        )
    posted = program_by_id(chain.task_info(task_id).program_id)
    if posted is not None and posted.codec == "private":  # only its requester can decrypt
        return he.result_he(c, chain, task_id, bootstrap)
    known = _known_params(c, chain, task_id, params_file)
    if known is not None and known.result_key:  # sealed to the requester's key
        return _emit_private(c, task_id, known, private.result_private(c, chain, task_id, known,
                                                                        bootstrap))  # fmt: skip
    r = read(chain, task_id, known)
    if r.value is None or r.decoded is None:
        raise CliError(f"task {task_id}: the result is not a public value")
    out = r.decoded.to_json()
    if plot_file is not None:
        _plot_clusters(plot_file, known, [v / 10**r.value.decimals for v in r.value.values])
    c.emit(
        {
            "task_id": task_id,
            "program": r.program,
            "status": r.status.name.lower(),
            "value": r.value.texts()[0],
            "value_scaled": r.value.value,
            **out,
            "values": out["named"],
            "result_digest": "0x" + r.digest.hex(),
            "final": r.final,
            "dp": r.guarantee,
        },
        f"task {task_id}: {r.decoded.line()}; "
        f"digest 0x{r.digest.hex()[:16]}…, {'final' if r.final else 'in challenge window'}"
        + (f"\n{dp_line(r.guarantee)}" if r.guarantee else ""),
    )


def _plot_clusters(path: Path, params: TaskParams | None, values: list[float]) -> None:
    """--plot: an ml.kmeans result over 2 columns, drawn within the declared ranges."""
    if params is None or params.program != "ml.kmeans" or len(params.columns) != 2:
        raise CliError("--plot draws ml.kmeans results over 2 columns (with the task's params)")
    from dnode.cli.plot import clusters_png

    k = len(values) // 3
    cents = [(values[3 * i], values[3 * i + 1]) for i in range(k)]
    sizes = [int(values[3 * i + 2]) for i in range(k)]
    xc, yc = params.columns
    clusters_png(path, cents, sizes, (float(xc.lo), float(xc.hi)), (float(yc.lo), float(yc.hi)))


def _emit_private(c: Ctx, task_id: int, params: TaskParams, got: dict[str, Any]) -> None:
    decoded, status = got["decoded"], got["status"]
    final = status == TaskStatus.FINALIZED
    out = decoded.to_json()
    c.emit(
        {
            "task_id": task_id,
            "program": params.program,
            "status": status.name.lower(),
            "private": True,
            "value": decoded.value.texts()[0],
            "value_scaled": decoded.value.value,
            **out,
            "values": out["named"],
            "result_digest": got["bundle_digest"],
            "fetched_from": got["fetched_from"],
            "final": final,
            "dp": params.spec.guarantee(params),
        },
        f"task {task_id}: {decoded.line()}; opened locally from the sealed shares (digest "
        f"{got['bundle_digest'][:18]}… matches the chain; "
        f"{'final' if final else 'in challenge window'})",
    )


@task.command("cancel")
@click.argument("task_id", type=int)
@pass_ctx
def cancel(c: Ctx, task_id: int) -> None:
    """Refund a task whose committee missed its deadline (non-delivering seats are slashed).

    \b
    Examples:
      dnode --home ~/req task cancel 1
    """
    chain = c.chain(c.account())
    t = chain.task_info(task_id)
    if t.status == TaskStatus.NONE:
        raise CliError(f"task {task_id} does not exist")
    chain.cancel(task_id)
    reason = chain.task_info(task_id).refund_reason
    words = REFUND_REASONS.get(reason, reason)
    c.emit(
        {"task_id": task_id, "status": "refunded", "requester": t.requester, "reason": reason},
        f"task {task_id} cancelled ({words}); the escrow was credited to {t.requester} "
        "(dnode withdraw)",
    )


@task.command("dispute")
@click.argument("task_id", type=int)
@pass_ctx
def dispute(c: Ctx, task_id: int) -> None:
    """Challenge a reported result within the challenge window, posting the dispute bond
    (max(dispute_bond, reward)).

    \b
    Examples:
      dnode --home ~/req task dispute 1
    """
    chain = c.chain(c.account())
    known = _known_params(c, chain, task_id, None)
    if known is not None and not known.spec.reruns(known):
        raise CliError(
            f"task {task_id} is not re-executed by nodes ({known.program}"
            + (" with differential privacy: a second noisy release would spend budget nobody "
               "charged" if known.spec.dp_plan(known) else "") + "); a dispute would only "
            "cost its bond"
        )  # fmt: skip
    bond = chain.dispute_bond_for(task_id)
    chain.dispute(task_id)
    d = chain.task_info(task_id).dispute
    c.emit(
        {
            "task_id": task_id,
            "status": "disputed",
            "bond": bond,
            "rerun_seat_deadline": d.seat_deadline if d else None,
            "rerun_report_deadline": d.report_deadline if d else None,
        },
        f"task {task_id} disputed with a bond of {fmt_eth(bond)}; a re-execution committee "
        "now recomputes it",
    )


task.add_command(he.upload)

COMMANDS = [task]
