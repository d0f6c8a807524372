"""Requester side of HE tasks: encrypt and post, push the public blobs, fetch and decrypt.

``dnode task post --program he.*`` and ``dnode task result`` dispatch here for HE programs;
``dnode task upload`` (defined here) re-pushes a posted task's blobs. Files under HOME:

* ``he-keys/`` (0700): the secret contexts, one per task (``node.he.keys``); they never leave
  this machine;
* ``he-blobs/``: the public context and ciphertexts of posted tasks, kept for re-uploads;
* ``he-tasks/<params digest>.json``: what ``task result`` needs to decrypt (context digest).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import numpy as np
import trio

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.sdk.private import MAX_RESULT_BLOB, fetch_result
from dnode.cli.units import fmt_eth
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.node import peer_client
from dnode.node.blobs import BlobError, BlobStore, push_blob
from dnode.node.errors import P2PError
from dnode.node.he import HeTask, decode_report, decrypt_result, prepare_task, read_data_file
from dnode.node.he.result import locator_digest
from dnode.oracle.encoding import result_digest
from dnode.oracle.errors import ResultMismatch, ResultNotAvailable
from dnode.scheduler.programs import Program, TaskParams, program_by_id

PUSH_ATTEMPTS = 4


# ---- local files ------------------------------------------------------------------------


def key_dir(c: Ctx) -> Path:
    d = c.home / "he-keys"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    return d


def blob_store(c: Ctx) -> BlobStore:
    return BlobStore(c.home / "he-blobs", max_blob=MAX_RESULT_BLOB)


def _record_path(c: Ctx, params_digest: bytes) -> Path:
    return c.home / "he-tasks" / f"{params_digest.hex()}.json"


def _save_record(c: Ctx, params: TaskParams, task_id: int, context_digest: bytes) -> None:
    path = _record_path(c, params.digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "task_id": task_id,
        "context_digest": "0x" + context_digest.hex(),
        "params": params.to_dict(),
    }
    path.write_text(json.dumps(rec, indent=1))


def _load_params(c: Ctx, chain: ChainClient, task_id: int) -> TaskParams:
    """The params this requester posted for ``task_id`` (re-hashed against the chain)."""
    info = chain.task_info(task_id)
    if info.status == TaskStatus.NONE:
        raise CliError(f"task {task_id} does not exist")
    path = _record_path(c, info.params_digest)
    try:
        rec = json.loads(path.read_text())
        params = TaskParams.from_bytes(json.dumps(rec["params"]).encode())
    except (OSError, ValueError, KeyError) as e:
        raise CliError(
            f"task {task_id} was not posted from {c.home} (no {path.name} in he-tasks: {e})"
        ) from None
    if params.digest != info.params_digest:
        raise CliError(f"{path} does not match task {task_id}'s on-chain params digest")
    return params


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


# ---- pushing blobs ----------------------------------------------------------------------


async def _push_all(
    bootstrap: list[str],
    peers: list[str],
    blobs: Mapping[bytes, bytes],
    on_progress: Any,
) -> None:
    done = 0
    total = len(peers) * len(blobs)
    errors: list[str] = []

    async def push(host: Any, peer: str, data: bytes) -> None:
        nonlocal done
        last: Exception | None = None
        for attempt in range(PUSH_ATTEMPTS):
            try:
                await push_blob(host, peer, data, timeout=30)
                done += 1
                on_progress(done, total)
                return
            except (BlobError, P2PError) as e:
                last = e
                await trio.sleep(1 + 2 * attempt)
        errors.append(f"{peer}: {last}")

    async with peer_client.ephemeral_host(bootstrap) as host:

        async def to_peer(peer: str) -> None:
            for data in blobs.values():
                await push(host, peer, data)

        async with trio.open_nursery() as n:  # one blob at a time per peer, all peers at once
            for peer in peers:
                n.start_soon(to_peer, peer)
    if errors:
        raise P2PError("some blobs were not delivered: " + "; ".join(errors))


def upload_blobs(
    c: Ctx, chain: ChainClient, task_id: int, task: HeTask, bootstrap: list[str], timeout: float
) -> list[str]:
    """Wait for the committee, then push the context and ciphertexts to every seat holder."""
    from dnode.cli.wait import _wait_for

    store = blob_store(c)
    blobs = {}
    for d in task.blobs():
        try:
            blobs[d] = store.get(d)
        except BlobError:
            raise CliError(f"blob 0x{d.hex()} of task {task_id} is not in {store.root}") from None
    st = _wait_for(c, chain, task_id, {TaskStatus.COMPUTING}, timeout, "waiting for the committee")
    if st != TaskStatus.COMPUTING:
        raise CliError(f"task {task_id} is {st.name.lower()}: the committee no longer needs inputs")
    peers = [chain.node_info(a).peer_id for a in chain.seats(task_id)]
    size = sum(len(b) for b in blobs.values())
    with c.console.status(
        f"task {task_id}: pushing {size / 1e6:.1f} MB to {len(peers)} seats"
    ) as s:

        def progress(done: int, total: int) -> None:
            s.update(f"task {task_id}: pushed {done}/{total} blobs to {len(peers)} seats")

        trio.run(_push_all, bootstrap, peers, blobs, progress)
    return peers


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
    acct = c.account()
    chain = c.chain(acct)
    keys = key_dir(c)
    t0 = time.monotonic()
    with c.console.status(f"encrypting {', '.join(files.values())} ({scheme})"):
        prep = prepare_task(prog.name, args, files, keys, scheme=scheme)
    encrypt_s = time.monotonic() - t0
    params = TaskParams(
        program=prog.name,
        owners=(acct.address,),
        input_timeout=input_timeout,
        extra=prep.task.to_extra(),
    )
    store = blob_store(c)
    for d, b in prep.blobs.items():
        store.put(b, d)
    now = max(int(time.time()), chain.block_timestamp())
    task_id = chain.post_task(
        prog.program_id,
        params.digest,
        capability=prog.capability_bit,
        committee_size=committee_size,
        seat_deadline=now + seat_timeout,
        report_deadline=now + report_timeout,
        reward=reward,
    )
    _save_record(c, params, task_id, prep.task.context.digest)
    announced = trio.run(peer_client.announce, list(bootstrap), task_id, params)
    peers: list[str] = []
    if upload:
        peers = upload_blobs(c, chain, task_id, prep.task, list(bootstrap), seat_timeout + 30)
    size = sum(len(b) for b in prep.blobs.values())
    c.emit(
        {
            "task_id": task_id,
            "program": prog.name,
            "params_digest": "0x" + params.digest.hex(),
            "context_digest": "0x" + prep.task.context.digest.hex(),
            "context_bytes": prep.task.context.size,
            "reward": reward,
            "announced_to": announced,
            "uploaded_to": peers,
            "blob_bytes": size,
            "encrypt_seconds": round(encrypt_s, 3),
            "secret_key": str(prep.secret_key_path),
            "he_params": prep.task.params.to_dict(),
        },
        f"posted task {task_id} ({prog.name}, committee {committee_size}, reward "
        f"{fmt_eth(reward)}); encrypted in {encrypt_s:.1f} s; announced to {announced} peer(s); "
        + (
            f"{size / 1e6:.1f} MB of public context and ciphertexts pushed to {len(peers)} seats"
            if upload
            else f"not uploaded yet: run `dnode task upload {task_id}`"
        )
        + f"\nsecret key kept in {prep.secret_key_path}",
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
    params = _load_params(c, chain, task_id)
    task = HeTask.from_task_params(params)
    peers = upload_blobs(c, chain, task_id, task, list(bootstrap), timeout)
    c.emit(
        {"task_id": task_id, "uploaded_to": peers},
        f"task {task_id}: public context and ciphertexts pushed to {len(peers)} seats",
    )


# ---- result -----------------------------------------------------------------------------


def result_he(c: Ctx, chain: ChainClient, task_id: int, bootstrap: tuple[str, ...]) -> None:
    """Fetch the result ciphertext named on-chain, check its digest, decrypt it locally."""
    status, digest, report = chain.result_of(task_id)
    if status not in (TaskStatus.REPORTED, TaskStatus.FINALIZED):
        raise ResultNotAvailable(task_id, status.name.lower())
    if result_digest(report) != digest:
        raise ResultMismatch(task_id, "0x" + digest.hex(), "0x" + result_digest(report).hex())
    blob_digest, locator = decode_report(report)
    if locator_digest(locator) != blob_digest:
        raise CliError(f"task {task_id}: the report's locator does not name its digest")
    if not bootstrap:
        raise CliError("fetching an HE result needs --bootstrap (a peer to reach the committee)")
    params = _load_params(c, chain, task_id)
    task = HeTask.from_task_params(params)
    peers = [chain.node_info(a).peer_id for a in chain.seats(task_id)]
    cache = blob_store(c)
    try:
        blob, source = cache.get(blob_digest), "cache"
    except BlobError:
        blob, source = trio.run(fetch_result, list(bootstrap), peers, blob_digest)
        cache.put(blob, blob_digest)  # digest checked by fetch_blob, again here
    values = decrypt_result(report, blob, key_dir=key_dir(c), context_digest=task.context.digest)
    arr = np.asarray(values)
    prog = program_by_id(chain.task_info(task_id).program_id)
    final = status == TaskStatus.FINALIZED
    shown = np.array2string(arr, precision=6, separator=", ", threshold=50)
    c.emit(
        {
            "task_id": task_id,
            "program": prog.name if prog else None,
            "status": status.name.lower(),
            "values": arr.tolist(),
            "shape": list(arr.shape),
            "result_digest": "0x" + blob_digest.hex(),
            "result_bytes": len(blob),
            "fetched_from": source,
            "final": final,
        },
        f"task {task_id} ({prog.name if prog else '?'}): {shown}\n"
        f"decrypted locally; ciphertext digest 0x{blob_digest.hex()[:16]}… matches the chain "
        f"({'final' if final else 'in challenge window'})",
    )
