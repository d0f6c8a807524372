"""Requester side of HE tasks, as commands: ``dnode task post --program he.*`` and ``dnode task
result`` dispatch here for HE programs; ``dnode task upload`` (defined here) re-pushes a posted
task's blobs. The work (encrypting, posting, pushing, decrypting) is the SDK's
(:mod:`dnode.cli.sdk.he`); files under HOME are described there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.sdk import he as sdk_he
from dnode.cli.units import fmt_eth
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.node.he import HeTask, read_data_file
from dnode.scheduler.programs import Program

# ---- argument parsing -------------------------------------------------------------------


def parse_data(items: tuple[str, ...]) -> dict[str, str]:
    """``--data FILE`` (input ``x``) or ``--data NAME=FILE`` (``x``, ``y``)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = "x", item
        if name not in ("x", "y") or not path:
            raise CliError(f"--data {item!r}: use FILE or x=FILE / y=FILE")
        if name in out:
            raise CliError(f"--data: input {name!r} given twice")
        if not Path(path).is_file():
            raise CliError(f"--data {item!r}: no such file")
        out[name] = path
    if "x" not in out:
        raise CliError("an HE program needs --data FILE (the encrypted input x)")
    return out


def _arg_value(name: str, raw: str) -> Any:
    if raw.startswith("@"):  # a data file: vector or matrix of numbers
        return read_data_file(raw[1:]).tolist()
    try:
        return json.loads(raw)
    except ValueError:
        raise CliError(f"--arg {name}: {raw!r} is not JSON (or @FILE for a CSV)") from None


def parse_args(args_opt: str | None, arg_items: tuple[str, ...]) -> dict[str, Any]:
    """``--args FILE.json|'{json}'`` then ``--arg NAME=JSON|@CSV`` overrides, in order."""
    args: dict[str, Any] = {}
    if args_opt:
        text = args_opt if args_opt.lstrip().startswith("{") else None
        if text is None:
            try:
                text = Path(args_opt).read_text()
            except OSError as e:
                raise CliError(f"--args {args_opt}: {e.strerror}") from None
        try:
            loaded = json.loads(text)
        except ValueError as e:
            raise CliError(f"--args {args_opt}: not JSON ({e})") from None
        if not isinstance(loaded, dict):
            raise CliError("--args must hold a JSON object of program arguments")
        args.update(loaded)
    for item in arg_items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CliError(f"--arg {item!r}: use NAME=JSON or NAME=@FILE")
        args[name] = _arg_value(name, raw)
    return args


# ---- post -------------------------------------------------------------------------------


def post_he(
    c: Ctx,
    prog: Program,
    *,
    committee_size: int,
    reward: int,
    seat_timeout: int,
    report_timeout: int,
    input_timeout: int,
    bootstrap: tuple[str, ...],
    data: tuple[str, ...],
    args_opt: str | None,
    arg_items: tuple[str, ...],
    scheme: str,
    upload: bool,
) -> None:
    if not bootstrap:
        raise CliError("an HE task needs --bootstrap: nodes learn its parameters by announcement")
    files = parse_data(data)
    args = parse_args(args_opt, arg_items)
    chain = c.chain(c.account())
    with c.console.status(f"encrypting {', '.join(files.values())} ({scheme}), posting") as s:

        def seen(st: TaskStatus) -> None:
            s.update(f"waiting for the committee (now {st.name.lower()})")

        def pushed(done: int, total: int) -> None:
            s.update(f"pushed {done}/{total} blobs to the committee")

        out = sdk_he.post_he(
            c.home, chain, prog, files, args, committee_size=committee_size, reward=reward,
            seat_timeout=seat_timeout, report_timeout=report_timeout,
            input_timeout=input_timeout, bootstrap=bootstrap, scheme=scheme, upload=upload,
            on_status=seen, on_progress=pushed,
        )  # fmt: skip
    out.pop("params")
    task_id, peers, size = out["task_id"], out["uploaded_to"], out["blob_bytes"]
    c.emit(
        out,
        f"posted task {task_id} ({prog.name}, committee {committee_size}, reward "
        f"{fmt_eth(reward)}); encrypted in {out['encrypt_seconds']:.1f} s; announced to "
        f"{out['announced_to']} peer(s); "
        + (
            f"{size / 1e6:.1f} MB of public context and ciphertexts pushed to {len(peers)} seats"
            if upload
            else f"not uploaded yet: run `dnode task upload {task_id}`"
        )
        + f"\nsecret key kept in {out['secret_key']}",
    )


@click.command("upload")
@click.argument("task_id", type=int)
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
@pass_ctx
def upload(c: Ctx, task_id: int, bootstrap: tuple[str, ...], timeout: float) -> None:
    """HE tasks: push the public context and ciphertexts to every seat holder (again).

    \b
    Examples:
      dnode --home ~/req task upload 3 --bootstrap /ip4/…/p2p/…
    """
    chain = c.chain()
    params = sdk_he.load_params(c.home, chain, task_id)
    task = HeTask.from_task_params(params)
    with c.console.status(f"task {task_id}: waiting for the committee") as s:
        peers = sdk_he.upload_blobs(
            c.home, chain, task_id, task, bootstrap, timeout,
            lambda st: s.update(f"task {task_id}: waiting for the committee "
                                f"(now {st.name.lower()})"),
            lambda done, total: s.update(f"task {task_id}: pushed {done}/{total} blobs"),
        )  # fmt: skip
    c.emit(
        {"task_id": task_id, "uploaded_to": peers},
        f"task {task_id}: public context and ciphertexts pushed to {len(peers)} seats",
    )


# ---- result -----------------------------------------------------------------------------


def result_he(c: Ctx, chain: ChainClient, task_id: int, bootstrap: tuple[str, ...]) -> None:
    """Fetch the result ciphertext named on-chain, check its digest, decrypt it locally."""
    r = sdk_he.result_he(c.home, chain, task_id, bootstrap)
    arr, status, prog = r.pop("array"), r.pop("status"), r["program"]
    shown = np.array2string(arr, precision=6, separator=", ", threshold=50)
    c.emit(
        {**r, "status": status.name.lower(), "values": arr.tolist(), "shape": list(arr.shape)},
        f"task {task_id} ({prog or '?'}): {shown}\n"
        f"decrypted locally; ciphertext digest {r['result_digest'][:18]}… matches the chain "
        f"({'final' if r['final'] else 'in challenge window'})",
    )
