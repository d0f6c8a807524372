"""On-chain encoding of a private (HE) result, and the requester's verify-and-decrypt step.

The chain never sees a ciphertext: the committee reports
``abi.encode(bytes32 result_digest, string locator)`` where ``result_digest`` is
``keccak256`` of the result tensor blob (:mod:`node.he.encode`) and ``locator`` says where to
fetch it (``dnode-blob:0x<digest>``: any committee member serves it over
``/dnode/blob/1.0.0``). Every honest member computes the same blob, so the same report bytes,
so their report signatures agree. The requester fetches the blob, checks
``keccak256(blob) == result_digest`` (from the chain) and decrypts it with the secret context
kept in its key directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from eth_abi import encode

from dnode.node.he.encode import decrypt_blob, keccak256
from dnode.node.he.errors import DigestMismatch, MalformedBlob
from dnode.oracle.encoding import PRIVATE_REPORT_TYPES, decode_private
from dnode.oracle.errors import OracleError

REPORT_TYPES = PRIVATE_REPORT_TYPES
LOCATOR_PREFIX = "dnode-blob:0x"
MAX_REPORT = 1024  # the contract's result size limit
MAX_LOCATOR = 512


def blob_locator(digest: bytes) -> str:
    return LOCATOR_PREFIX + digest.hex()


def encode_report(result_digest: bytes, locator: str | None = None) -> bytes:
    """The result bytes a node signs and reports for an HE task."""
    if len(result_digest) != 32:
        raise ValueError("result digest must be 32 bytes")
    locator = blob_locator(result_digest) if locator is None else locator
    if len(locator) > MAX_LOCATOR:
        raise ValueError(f"locator longer than {MAX_LOCATOR} characters")
    out = encode(REPORT_TYPES, [result_digest, locator])
    assert len(out) <= MAX_REPORT
    return out


def report_for_blob(result_blob: bytes) -> bytes:
    """The report bytes for a result tensor blob (what every committee member signs)."""
    return encode_report(keccak256(result_blob))


def decode_report(data: bytes) -> tuple[bytes, str]:
    """(result digest, locator) of reported bytes; MalformedBlob if they are not an HE report."""
    try:
        return decode_private(data)
    except OracleError as e:
        raise MalformedBlob(str(e)) from None


def locator_digest(locator: str) -> bytes:
    """The blob digest a ``dnode-blob:`` locator points at."""
    if not locator.startswith(LOCATOR_PREFIX) or len(locator) != len(LOCATOR_PREFIX) + 64:
        raise MalformedBlob(f"unsupported result locator {locator!r}")
    try:
        return bytes.fromhex(locator[len(LOCATOR_PREFIX) :])
    except ValueError:
        raise MalformedBlob(f"unsupported result locator {locator!r}") from None


def verify_result(report: bytes, result_blob: bytes) -> bytes:
    """Check a fetched result blob against the attested report; returns the digest."""
    digest, _ = decode_report(report)
    got = keccak256(result_blob)
    if got != digest:
        raise DigestMismatch(
            f"result blob hashes to 0x{got.hex()}, the chain attests 0x{digest.hex()}"
        )
    return digest


def decrypt_result(
    report: bytes, result_blob: bytes, *, key_dir: str | Path, context_digest: bytes
) -> np.ndarray:
    """Requester: verify the blob against the on-chain report, then decrypt it."""
    from dnode.node.he.keys import load_secret_context

    verify_result(report, result_blob)
    return decrypt_with(load_secret_context(key_dir, context_digest), result_blob)


def decrypt_with(secret_ctx: Any, result_blob: bytes) -> np.ndarray:
    """Decrypt, then keep only the documented precision (see :mod:`node.he.hygiene`)."""
    from dnode.node.he.encode import TensorBlob
    from dnode.node.he.hygiene import publishable

    scheme = TensorBlob.unpack(result_blob).header.scheme
    return publishable(decrypt_blob(secret_ctx, result_blob), scheme)
