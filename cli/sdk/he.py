"""Requester side of HE programs (``he.*``): encrypt locally and post, push the public blobs
to the committee, fetch and decrypt the result. Files under the client's home:

* ``he-keys/`` (0700): the secret contexts, one per task (``node.he.keys``); they never leave
  this machine;
* ``he-blobs/``: the public context and ciphertexts of posted tasks, kept for re-uploads;
* ``he-tasks/<params digest>.json``: what reading the result needs (context digest).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dnode.cli.sdk.errors import SdkError
from dnode.cli.sdk.private import MAX_RESULT_BLOB, fetch_result
from dnode.cli.sdk.run import run_trio
from dnode.cli.sdk.tasks import wait_for
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.node.blobs import BlobError, BlobStore
from dnode.scheduler.programs import Program, TaskParams, program_by_id

PUSH_ATTEMPTS = 4


def key_dir(home: Path) -> Path:
    d = home / "he-keys"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    return d


def blob_store(home: Path) -> BlobStore:
    return BlobStore(home / "he-blobs", max_blob=MAX_RESULT_BLOB)


def _record_path(home: Path, params_digest: bytes) -> Path:
    return home / "he-tasks" / f"{params_digest.hex()}.json"


def _save_record(home: Path, params: TaskParams, task_id: int, context_digest: bytes) -> None:
    path = _record_path(home, params.digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "task_id": task_id,
        "context_digest": "0x" + context_digest.hex(),
        "params": params.to_dict(),
    }
    path.write_text(json.dumps(rec, indent=1))


def load_params(home: Path, chain: ChainClient, task_id: int) -> TaskParams:
    """The params this requester posted for ``task_id`` (re-hashed against the chain)."""
    info = chain.task_info(task_id)
    if info.status == TaskStatus.NONE:
        raise SdkError(f"task {task_id} does not exist")
    path = _record_path(home, info.params_digest)
    try:
        rec = json.loads(path.read_text())
        params = TaskParams.from_bytes(json.dumps(rec["params"]).encode())
    except (OSError, ValueError, KeyError) as e:
        raise SdkError(
            f"task {task_id} was not posted from {home} (no {path.name} in he-tasks: {e})"
        ) from None
    if params.digest != info.params_digest:
        raise SdkError(f"{path} does not match task {task_id}'s on-chain params digest")
    return params


async def _push_all(
    bootstrap: list[str],
    peers: list[str],
    blobs: Mapping[bytes, bytes],
    on_progress: Callable[[int, int], None],
) -> None:
    import trio

    from dnode.node import peer_client
    from dnode.node.blobs import push_blob
    from dnode.node.errors import P2PError

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
    home: Path,
    chain: ChainClient,
    task_id: int,
    task: Any,
    bootstrap: Sequence[str],
    timeout: float,
    on_status: Callable[[TaskStatus], None] | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[str]:
    """Wait for the committee, then push the context and ciphertexts to every seat holder."""
    store = blob_store(home)
    blobs = {}
    for d in task.blobs():
        try:
            blobs[d] = store.get(d)
        except BlobError:
            raise SdkError(f"blob 0x{d.hex()} of task {task_id} is not in {store.root}") from None
    st = wait_for(chain, task_id, {TaskStatus.COMPUTING}, timeout, "waiting for the committee",
                  on_status)  # fmt: skip
    if st != TaskStatus.COMPUTING:
        raise SdkError(f"task {task_id} is {st.name.lower()}: the committee no longer needs inputs")
    peers = [chain.node_info(a).peer_id for a in chain.seats(task_id)]
    run_trio(_push_all, list(bootstrap), peers, blobs, on_progress)
    return peers


def post_he(
    home: Path,
    chain: ChainClient,
    prog: Program,
    files: Mapping[str, str | Path],
    args: Mapping[str, Any],
    *,
    committee_size: int,
    reward: int,
    seat_timeout: int,
    report_timeout: int,
    input_timeout: int,
    bootstrap: Sequence[str],
    scheme: str = "ckks",
    upload: bool = True,
    on_status: Callable[[TaskStatus], None] | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    """Encrypt ``files`` (``{"x": FILE}``, and ``"y"`` for two-input programs) with a fresh key
    kept under HOME/he-keys, post the task, announce its params and (``upload``) push the
    public context and ciphertexts to the committee once it forms."""
    from dnode.node import peer_client
    from dnode.node.he import prepare_task

    if not bootstrap:
        raise SdkError("an HE task needs --bootstrap: nodes learn its parameters by announcement")
    if "x" not in files:
        raise SdkError("an HE program needs --data FILE (the encrypted input x)")
    acct = chain.account
    if acct is None:
        raise SdkError("posting needs a client with an account")
    t0 = time.monotonic()
    prep = prepare_task(prog.name, dict(args), {k: str(v) for k, v in files.items()},
                        key_dir(home), scheme=scheme)  # fmt: skip
    encrypt_s = time.monotonic() - t0
    params = TaskParams(
        program=prog.name,
        owners=(acct.address,),
        input_timeout=input_timeout,
        extra=prep.task.to_extra(),
    )
    store = blob_store(home)
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
    _save_record(home, params, task_id, prep.task.context.digest)
    announced = run_trio(peer_client.announce, list(bootstrap), task_id, params)
    peers: list[str] = []
    if upload:
        peers = upload_blobs(home, chain, task_id, prep.task, bootstrap, seat_timeout + 30,
                             on_status, on_progress)  # fmt: skip
    return {
        "task_id": task_id,
        "program": prog.name,
        "params": params,
        "params_digest": "0x" + params.digest.hex(),
        "context_digest": "0x" + prep.task.context.digest.hex(),
        "context_bytes": prep.task.context.size,
        "reward": reward,
        "announced_to": announced,
        "uploaded_to": peers,
        "blob_bytes": sum(len(b) for b in prep.blobs.values()),
        "encrypt_seconds": round(encrypt_s, 3),
        "secret_key": str(prep.secret_key_path),
        "he_params": prep.task.params.to_dict(),
    }


def result_he(
    home: Path, chain: ChainClient, task_id: int, bootstrap: Sequence[str]
) -> dict[str, Any]:
    """Fetch the result ciphertext named on-chain, check its digest, decrypt it locally."""
    import numpy as np

    from dnode.node.he import HeTask, decode_report, decrypt_result
    from dnode.node.he.result import locator_digest
    from dnode.oracle.encoding import result_digest
    from dnode.oracle.errors import ResultMismatch, ResultNotAvailable

    status, digest, report = chain.result_of(task_id)
    if status not in (TaskStatus.REPORTED, TaskStatus.FINALIZED):
        raise ResultNotAvailable(task_id, status.name.lower())
    if result_digest(report) != digest:
        raise ResultMismatch(task_id, "0x" + digest.hex(), "0x" + result_digest(report).hex())
    blob_digest, locator = decode_report(report)
    if locator_digest(locator) != blob_digest:
        raise SdkError(f"task {task_id}: the report's locator does not name its digest")
    if not bootstrap:
        raise SdkError("fetching an HE result needs --bootstrap (a peer to reach the committee)")
    params = load_params(home, chain, task_id)
    task = HeTask.from_task_params(params)
    peers = [chain.node_info(a).peer_id for a in chain.seats(task_id)]
    cache = blob_store(home)
    try:
        blob, source = cache.get(blob_digest), "cache"
    except BlobError:
        blob, source = run_trio(fetch_result, list(bootstrap), peers, blob_digest)
        cache.put(blob, blob_digest)  # digest checked by fetch_blob, again here
    values = decrypt_result(report, blob, key_dir=key_dir(home), context_digest=task.context.digest)
    prog = program_by_id(chain.task_info(task_id).program_id)
    return {
        "task_id": task_id,
        "program": prog.name if prog else None,
        "status": status,
        "array": np.asarray(values),
        "result_digest": "0x" + blob_digest.hex(),
        "result_bytes": len(blob),
        "fetched_from": source,
        "final": status == TaskStatus.FINALIZED,
    }
