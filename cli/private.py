"""Private results of table programs: the requester's result key, and opening the sealed
shares the committee attested (see :mod:`dnode.node.mpc.delivery`)."""

from __future__ import annotations

from typing import Any

import trio

from dnode.cli.context import CliError, Ctx
from dnode.cli.he import _fetch_result
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.node.blobs import BlobError, BlobStore
from dnode.node.mpc.delivery import Bundle, open_bundle, result_keypair
from dnode.oracle.codecs import LOCATOR_PREFIX, PrivateCodec, TensorResult
from dnode.oracle.encoding import AggregateResult, result_digest
from dnode.oracle.errors import ResultMismatch, ResultNotAvailable
from dnode.scheduler.programs import TaskParams

MAX_BUNDLE = 64 << 20


def result_key(c: Ctx) -> str:
    """The public result key of the account that posts (derived from its key)."""
    _, public = result_keypair(bytes(c.account().key))
    return public


def result_private(
    c: Ctx, chain: ChainClient, task_id: int, params: TaskParams, bootstrap: tuple[str, ...]
) -> dict[str, Any]:
    """Fetch the sealed shares named on-chain, check them against the attested digest, open
    them with this account's result key and reconstruct (error-detecting) the output."""
    status, digest, report = chain.result_of(task_id)
    if status not in (TaskStatus.REPORTED, TaskStatus.FINALIZED):
        raise ResultNotAvailable(task_id, status.name.lower())
    if result_digest(report) != digest:
        raise ResultMismatch(task_id, "0x" + digest.hex(), "0x" + result_digest(report).hex())
    got = PrivateCodec().decode(report)
    if got.locator != LOCATOR_PREFIX + got.blob_digest.hex():
        raise CliError(f"task {task_id}: the report's locator does not name its digest")
    sk, public = result_keypair(bytes(c.account().key))
    if public != params.result_key:
        raise CliError(
            f"task {task_id}: its result is sealed to another account's key (post it and read it "
            "with the same --account)"
        )
    cache = BlobStore(c.home / "results")
    try:
        blob, source = cache.get(got.blob_digest), "cache"
    except BlobError:
        if not bootstrap:
            raise CliError("fetching a private result needs --bootstrap (a peer to reach the "
                           "committee)") from None  # fmt: skip
        peers = [chain.node_info(a).peer_id for a in chain.seats(task_id)]
        blob, source = trio.run(_fetch_result, list(bootstrap), peers, got.blob_digest)
        cache.put(blob, got.blob_digest)  # digest checked by fetch_blob, again here
    revealed, rows = open_bundle(sk, Bundle.from_bytes(blob))
    spec = params.spec
    out = spec.finish(params, revealed, rows)
    shape, labels = spec.layout(params)
    decoded = TensorResult(AggregateResult.from_fractions(out.values, out.count), shape, labels)
    return {
        "decoded": decoded,
        "status": status,
        "bundle_digest": "0x" + got.blob_digest.hex(),
        "fetched_from": source,
        "output": out,  # the exact values (programs whose result is more than a tensor)
    }
