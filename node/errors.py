"""Errors raised by the node package (keystore, p2p, MPC execution, daemon)."""

from __future__ import annotations


class NodeError(Exception):
    """Root of every error the node package raises; the CLI prints ``str(err)``."""


class KeystoreError(NodeError):
    def __init__(self, path: str, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"keystore {path}: {detail}")


class WrongPassword(KeystoreError):
    def __init__(self, path: str) -> None:
        super().__init__(path, "wrong password")


class InputError(NodeError):
    """A data owner's inputs file cannot be used."""

    def __init__(self, path: str, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"inputs file {path}: {detail}")


class ProtocolViolation(NodeError):
    """A peer sent a malformed or unauthenticated message; it is dropped, the node keeps serving."""

    def __init__(self, peer: str, detail: str) -> None:
        self.peer, self.detail = peer, detail
        super().__init__(f"dropped message from {peer}: {detail}")


class P2PError(NodeError):
    """A libp2p operation failed (dial, stream, timeout)."""


class MpcError(NodeError):
    """An MPC session failed (a party died, timed out, or the program failed)."""

    def __init__(self, task_id: int, detail: str) -> None:
        self.task_id, self.detail = task_id, detail
        super().__init__(f"MPC for task {task_id} failed: {detail}")


class RequestRefused(NodeError):
    """A peer answered a request with a refusal (it validated our message and said no)."""

    def __init__(self, peer: str, detail: str) -> None:
        self.peer, self.detail = peer, detail
        super().__init__(f"peer {peer} refused: {detail}")
