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


class ProtocolNotServed(P2PError):
    """The peer is reachable but does not serve ``protocol`` (e.g. a data owner's agent asked
    for join intents): asking it again will not help."""

    def __init__(self, peer: str, protocol: str, detail: str = "") -> None:
        self.peer, self.protocol = peer, protocol
        super().__init__(f"{peer} does not serve {protocol}" + (f": {detail}" if detail else ""))


class MpcError(NodeError):
    """An MPC session failed (a party died, timed out, or the program failed)."""

    def __init__(self, task_id: int, detail: str, *, connected: bool = False) -> None:
        self.task_id, self.detail = task_id, detail
        # the attempt got past "all parties connected": the kernel may have opened values
        # (a DP task is then not retried: a second noisy release was never charged)
        self.connected = connected
        super().__init__(f"MPC for task {task_id} failed: {detail}")


class CheatingDetectedError(MpcError):
    """A malicious-minority check of the session failed: the honest parties refuse to
    produce (and sign) a result.  ``owner`` is the data owner it names, if any."""

    def __init__(self, task_id: int, detail: str, owner: int | None = None) -> None:
        self.owner = owner
        super().__init__(task_id, detail)


class RequestRefused(NodeError):
    """A peer answered a request with a refusal (it validated our message and said no)."""

    def __init__(self, peer: str, detail: str) -> None:
        self.peer, self.detail = peer, detail
        super().__init__(f"peer {peer} refused: {detail}")


class StateError(NodeError):
    """The node's crash-safe local state (state dir, SQLite) cannot be used as asked."""


class StateLocked(StateError):
    """Another process already runs a node on this state directory (same key, same home)."""

    def __init__(self, path: str, holder: str = "") -> None:
        self.path, self.holder = path, holder
        who = f" (held by {holder})" if holder else ""
        super().__init__(f"another node is already running on {path}{who}; stop it first")


class DoubleSignRefused(StateError):
    """Signing protection: this node already signed a different result for the task."""

    def __init__(self, task_id: int, round: int, signed_digest: bytes, requested: bytes) -> None:
        self.task_id, self.round = task_id, round
        self.signed_digest, self.requested = signed_digest, requested
        super().__init__(
            f"task {task_id} round {round}: refusing to sign result 0x{requested.hex()[:16]}…, "
            f"already signed 0x{signed_digest.hex()[:16]}…"
        )


def leaves(e: BaseException) -> list[BaseException]:
    """The real errors inside (possibly nested) exception groups from trio nurseries."""
    if isinstance(e, BaseExceptionGroup):
        return [leaf for sub in e.exceptions for leaf in leaves(sub)]
    return [e]
