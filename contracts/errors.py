"""Errors raised by the contracts package (compile, deploy, chain client)."""

from __future__ import annotations


class ContractsError(Exception):
    """Root of every error the contracts package raises; the CLI prints ``str(err)``."""


class CompileError(ContractsError):
    def __init__(self, source: str, detail: str) -> None:
        self.source, self.detail = source, detail
        super().__init__(f"cannot compile {source}: {detail}")


class ManifestError(ContractsError):
    def __init__(self, path: str, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"deployment manifest {path}: {detail}")


class RpcUnreachable(ContractsError):
    def __init__(self, url: str, detail: str = "") -> None:
        self.url, self.detail = url, detail
        super().__init__(f"cannot reach the chain at {url}" + (f": {detail}" if detail else ""))


class ChainMismatch(ContractsError):
    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(
            f"manifest is for chain id {expected} but the RPC endpoint reports {actual}"
        )


class TransactionReverted(ContractsError):
    """The contract rejected a transaction or call; ``reason`` is its namespaced revert string."""

    def __init__(self, action: str, reason: str) -> None:
        self.action, self.reason = action, reason
        super().__init__(f"{action} rejected: {reason}")


class InsufficientFunds(ContractsError):
    def __init__(self, account: str, needed_wei: int, balance_wei: int) -> None:
        self.account, self.needed_wei, self.balance_wei = account, needed_wei, balance_wei
        super().__init__(
            f"account {account} cannot pay {needed_wei} wei "
            f"(balance {balance_wei} wei, gas included)"
        )


class DevnetError(ContractsError):
    """The embedded dev chain (``dnode chain``) cannot start or was misconfigured."""


class RpcRetriesExhausted(RpcUnreachable):
    """Every attempt of one JSON-RPC call failed with a transient error (all endpoints tried)."""

    def __init__(self, endpoints: str, method: str, attempts: int, kind: str, detail: str) -> None:
        self.endpoints, self.method, self.attempts, self.kind = endpoints, method, attempts, kind
        super().__init__(endpoints, f"{method} failed {attempts} times (last: {kind}: {detail})")


class EndpointChainMismatch(ContractsError):
    """Two configured RPC endpoints serve different chains (a configuration mistake)."""

    def __init__(self, endpoint: str, expected: int, actual: int) -> None:
        self.endpoint, self.expected, self.actual = endpoint, expected, actual
        super().__init__(
            f"RPC endpoint {endpoint} reports chain id {actual}, the others {expected}"
        )
