"""Private results of table programs: the requester's result key, and opening the sealed
shares the committee attested (see :mod:`dnode.node.mpc.delivery`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnode.cli.sdk.errors import SdkError
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.node.blobs import BlobError, BlobStore
from dnode.node.mpc.delivery import Bundle, open_bundle, result_keypair
from dnode.oracle.codecs import LOCATOR_PREFIX, PrivateCodec, TensorResult
from dnode.oracle.encoding import AggregateResult, result_digest
from dnode.oracle.errors import ResultMismatch, ResultNotAvailable
from dnode.scheduler.programs import TaskParams

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

MAX_BUNDLE = 64 << 20


def result_private(
    account: LocalAccount,
    home: Path,
    chain: ChainClient,
    task_id: int,
    params: TaskParams,
    bootstrap: tuple[str, ...],
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
        raise SdkError(f"task {task_id}: the report's locator does not name its digest")
    sk, public = result_keypair(bytes(account.key))
    if public != params.result_key:
        raise SdkError(
            f"task {task_id}: its result is sealed to another account's key (post it and read it "
            "with the same --account)"
        )
    cache = BlobStore(home / "results")
    try:
        blob, source = cache.get(got.blob_digest), "cache"
    except BlobError:
        if not bootstrap:
            raise SdkError("fetching a private result needs --bootstrap (a peer to reach the "
                           "committee)") from None  # fmt: skip
        peers = [chain.node_info(a).peer_id for a in chain.seats(task_id)]
        from dnode.cli.sdk.run import run_trio

        blob, source = run_trio(fetch_result, list(bootstrap), peers, got.blob_digest)
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


MAX_RESULT_BLOB = 1 << 30  # bytes a result blob may have (HE ciphertexts are the largest)


async def fetch_result(bootstrap: list[str], peers: list[str], digest: bytes) -> tuple[bytes, str]:
    """The result blob with ``digest`` from the first committee member that serves it,
    through a short-lived libp2p host; returns (blob, peer)."""
    from dnode.node import peer_client
    from dnode.node.blobs import fetch_blob
    from dnode.node.errors import P2PError

    errors = []
    async with peer_client.ephemeral_host(bootstrap) as host:
        for peer in peers:
            try:
                blob = await fetch_blob(host, peer, digest, max_size=MAX_RESULT_BLOB, timeout=30)
                return blob, peer
            except (BlobError, P2PError) as e:
                errors.append(f"{peer}: {e}")
    raise P2PError("no committee member served the result blob: " + "; ".join(errors))
