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


class OutboxError(ContractsError):
    """The transaction outbox (crash-safe nonce manager) could not settle a transaction."""


class NonceConsumed(OutboxError):
    """A nonce this outbox assigned was used by a transaction it never signed (the key is
    used elsewhere): the recorded transaction can never be mined."""

    def __init__(self, sender: str, nonce: int, action: str) -> None:
        self.sender, self.nonce, self.action = sender, nonce, action
        super().__init__(
            f"{action}: nonce {nonce} of {sender} was used by another transaction "
            "(is the key used by another wallet?)"
        )


class TxPending(OutboxError):
    """Broadcast but not mined in time; it stays in the outbox and is re-driven later."""

    def __init__(self, action: str, tx_hash: str, nonce: int, detail: str) -> None:
        self.action, self.tx_hash, self.nonce, self.detail = action, tx_hash, nonce, detail
        super().__init__(f"{action}: tx {tx_hash} (nonce {nonce}) still pending: {detail}")


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


class DatasetRefused(TransactionReverted):
    """The data marketplace (contracts/vyper/datasets.vy) refused an action; ``reason`` is the
    namespaced "datasets: ..." revert string. Subclasses name the rule that was broken."""


class UnknownDataset(DatasetRefused):
    """No dataset has this id."""


class NotDatasetOwner(DatasetRefused):
    """Only a dataset's owner may update or retire it."""


class DatasetRetired(DatasetRefused):
    """The dataset was retired: no task may name it and it cannot be updated."""


class DatasetExpired(DatasetRefused):
    """The task arrived after the dataset's expiry."""


class ProgramNotAllowed(DatasetRefused):
    """The dataset's policy does not allow the task's program."""


class BudgetExhausted(DatasetRefused):
    """The task's privacy cost exceeds the budget the dataset has left."""


class WrongDataPayment(DatasetRefused):
    """msg.value is not the reward plus the datasets' current prices (a price changed?)."""


class NothingToSettle(DatasetRefused):
    """The task names no dataset, or its datasets were already settled."""


class TaskNotEnded(DatasetRefused):
    """Dataset payments settle only once the task is finalized, overturned or refunded."""


_DATASET_REASONS: dict[str, type[DatasetRefused]] = {
    "datasets: unknown dataset": UnknownDataset,
    "datasets: not the owner": NotDatasetOwner,
    "datasets: dataset retired": DatasetRetired,
    "datasets: dataset expired": DatasetExpired,
    "datasets: program not allowed": ProgramNotAllowed,
    "datasets: privacy budget exhausted": BudgetExhausted,
    "datasets: payment is not reward plus prices": WrongDataPayment,
    "datasets: nothing to settle": NothingToSettle,
    "datasets: task not ended": TaskNotEnded,
}


def dataset_error(err: TransactionReverted) -> TransactionReverted:
    """The typed error for a data marketplace revert (``err`` itself for other reasons)."""
    if not err.reason.startswith("datasets: "):
        return err
    cls = _DATASET_REASONS.get(err.reason, DatasetRefused)
    return cls(err.action, err.reason)


class ChainTooOld(ContractsError):
    """The chain does not run the EVM version the contracts need: Cancun (TLOAD/TSTORE/MCOPY;
    ganache stops at Shanghai). Compiled for Shanghai they exceed EIP-170's size limit."""

    def __init__(self, needed: str, found: str) -> None:
        self.needed, self.found = needed, found
        super().__init__(
            f"the chain runs {found}; dnode's contracts need {needed} or later "
            "(TLOAD/TSTORE/MCOPY; without them the main contract exceeds EIP-170's 24,576-byte "
            "limit): use e.g. anvil, geth or hardhat >= 2.20"
        )
