"""Typed errors of the homomorphic-encryption half (``node.he``).

Every error is a :class:`HeError` (itself a :class:`node.errors.NodeError`), so the CLI prints
``str(err)`` and the daemon logs one line, drops the task on this node and keeps running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dnode.node.errors import NodeError


class HeError(NodeError):
    """Root of every error raised by ``node.he``."""


class InsecureParams(HeError):
    """The encryption parameters give less than 128-bit security (or are not valid at all)."""


class InsufficientDepth(HeError):
    """The parameters do not leave enough multiplicative depth for the program."""


class UnsupportedOperation(HeError):
    """The program / argument combination is not supported (e.g. division under BFV)."""


class InvalidProgramArgs(HeError):
    """The plaintext arguments of a program are malformed (shape, type, non-finite numbers)."""


class MalformedBlob(HeError):
    """An untrusted context or ciphertext blob does not parse or does not match the task."""


class BlobTooLarge(HeError):
    """A blob is larger than the configured cap."""


class ContextNotPublic(HeError):
    """A context handed to a node contains a secret key (nodes must never hold one)."""


class ParamsMismatch(MalformedBlob):
    """A context or ciphertext was made with other parameters than the task declares."""


class DigestMismatch(HeError):
    """Bytes do not hash to the digest they were announced / attested under."""


class EvaluationFailed(HeError):
    """Evaluation raised inside TenSEAL, crashed, or timed out."""


class HeDataError(HeError):
    """A requester's data file cannot be encrypted (parse error, wrong shape, out of range)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"data file {path}: {detail}")


class KeyDirError(HeError):
    """The requester's HE key directory is missing a key or is unsafe."""


@contextmanager
def convert_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (ValueError, RuntimeError, TypeError, IndexError, OverflowError, MemoryError) as e:
        raise MalformedBlob(f"{what}: rejected by TenSEAL/SEAL: {str(e)[:200]}") from None
