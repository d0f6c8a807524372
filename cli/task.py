"""Requester and data-owner commands: post, contribute, status, result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dnode.cli import he
from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.owner import notice_lines, owner_notices
from dnode.cli.programs import program_args
from dnode.cli.sdk.client import check_sizes
from dnode.cli.sdk.tasks import REFUND_REASONS, min_aggregation, table_params, why_waiting
from dnode.cli.sdk.tasks import declines as seat_declines
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.cli.wait import _wait_for
from dnode.contracts.client import TERMINAL_STATUSES, TaskStatus
from dnode.node.aggregation import DEFAULT_MIN_OWNERS
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
    check_sizes(committee_size, seat_timeout, report_timeout)
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
    client = c.client(bootstrap)
    t = client.post(
        prog.name, owners=owners, datasets=datasets, privacy_cost=privacy_costs,
        columns=columns, schema=schema, args=program_args(prog, cctx.args, args_opt),
        reward=reward, committee=committee_size, seat_timeout=seat_timeout,
        report_timeout=report_timeout, input_timeout=input_timeout, max_rows=max_rows,
        min_owners=min_owners, min_values=min_values, allow_single_owner=allow_single_owner,
        private_result=private_result,
    )  # fmt: skip
    assert t.params is not None
    last = client.signer.last_tx
    guarantee = prog.guarantee(t.params)
    c.emit(
        {
            "task_id": t.id,
            "program": prog.name,
            "params_digest": "0x" + t.params.digest.hex(),
            "reward": reward,
            "announced_to": t.announced_to,
            "params": t.params.to_dict(),
            "datasets": list(datasets),
            "privacy_costs": [x / 1e6 for x in t.privacy_costs],
            "dp": guarantee,
            "tx": last.tx_hash if last else None,
        },
        f"posted task {t.id} ({prog.name}, committee {committee_size}, reward {fmt_eth(reward)})"
        + (f"; {dp_line(guarantee)}" if guarantee else "")
        + (
            f"; announced to {t.announced_to} peer(s)"
            if bootstrap
            else "; not announced (no --bootstrap): nodes will not see its parameters"
        ),
    )


def dp_line(g: dict[str, Any]) -> str:
    """One line of a DP guarantee (scheduler.dp.Plan.guarantee)."""
    scales = ", ".join(f"{r['name']} scale {r['scale']} (L1 sensitivity {r['sensitivity_l1']})"
                       for r in g["releases"])  # fmt: skip
    scope = f"; {g['scope']}" if g.get("scope") else ""
    return (f"differential privacy: {g['statement']} for {g['neighbours']}; {g['mechanism']}; "
            f"{scales}{scope}")  # fmt: skip


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
    minimum = min_aggregation(owners, min_owners, min_values, allow_single_owner)
    params = table_params(prog, owners, columns, schema, args, input_timeout, max_rows,
                          minimum.to_extra())  # fmt: skip
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
    accepted = c.client(bootstrap).announce(task_id, params)
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
    client = c.client(bootstrap)
    with c.console.status(f"task {task_id}: waiting for the committee") as spin:

        def seen(st: TaskStatus, what: str) -> None:
            spin.update(f"task {task_id}: waiting for the {what} (now {st.name.lower()})")

        got = client.contribute(task_id, inputs, timeout=timeout, round=round_,
                                params_file=params_file, on_status=seen)  # fmt: skip
    rows = got["rows"]
    committee = "re-execution committee" if got["round"] else "committee"
    c.emit(
        got,
        f"task {task_id}: {rows} row(s) secret-shared to {len(got['seats'])} seats "
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
        opening, extra = why_waiting(chain, t)
    refund = REFUND_REASONS.get(t.refund_reason, t.refund_reason or "no reason recorded")
    declines = seat_declines(chain, task_id)
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
    client = c.client(bootstrap)
    known = client.known_params(task_id, params_file)
    r = client.result(task_id, known)
    guarantee = known.spec.guarantee(known) if known is not None else None
    if plot_file is not None:
        _plot_clusters(plot_file, known, r.values)
    c.emit(
        {
            **r.to_json(),
            "value": r.raw["values"][0],
            "value_scaled": r.raw["values_scaled"][0],
            "values": r.raw["named"],
            **({"fetched_from": r.fetched_from} if r.private else {}),
            "dp": guarantee,
        },
        f"task {task_id}: {r.line}; "
        + (
            f"opened locally from the sealed shares (digest {r.digest[:18]}… matches the chain; "
            if r.private
            else f"digest {r.digest[:18]}…, "
        )
        + f"{'final' if r.final else 'in challenge window'}"
        + (")" if r.private else "")
        + (f"\n{dp_line(guarantee)}" if guarantee else ""),
    )


def _plot_clusters(path: Path, params: TaskParams | None, values: list[float]) -> None:
    """--plot: a clustering result (centroids and sizes: ``ml.kmeans``, ``ml.kmeans_step``)
    over 2 columns, drawn within the declared ranges; recognised by its labels, not its name."""
    names = tuple(c.name for c in params.columns) if params is not None else ()
    labels = params.spec.labels(params) if params is not None else ()
    if params is None or len(names) != 2 or labels[1:] != ((*names, "size"),):
        raise CliError("--plot draws ml.kmeans results over 2 columns (with the task's params)")
    from dnode.cli.plot import clusters_png

    k = len(values) // 3
    cents = [(values[3 * i], values[3 * i + 1]) for i in range(k)]
    sizes = [int(values[3 * i + 2]) for i in range(k)]
    xc, yc = params.columns
    clusters_png(path, cents, sizes, (float(xc.lo), float(xc.hi)), (float(yc.lo), float(yc.hi)))


@task.command("cancel")
@click.argument("task_id", type=int)
@pass_ctx
def cancel(c: Ctx, task_id: int) -> None:
    """Refund a task whose committee missed its deadline (non-delivering seats are slashed).

    \b
    Examples:
      dnode --home ~/req task cancel 1
    """
    task = c.client().task(task_id)
    t = task.info()
    reason = task.cancel()
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
    known = c.client().known_params(task_id)
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
