"""Typed client for the deployed dnode contract.

Every transaction is built, gas-estimated, signed locally and sent with
``eth_sendRawTransaction`` so the client works against any EVM JSON-RPC node (anvil, geth,
eth-tester) without node-managed accounts. Contract rejections surface as
``TransactionReverted(action, reason)`` carrying the namespaced revert string.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
)

from contracts.errors import (
    ChainMismatch,
    ContractsError,
    InsufficientFunds,
    RpcUnreachable,
    TransactionReverted,
)
from contracts.manifest import Deployment

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
GAS_MARGIN_NUM, GAS_MARGIN_DEN, GAS_MARGIN_ADD = 12, 10, 10_000
BASE_TX_GAS = 21_000
DEFAULT_PRIORITY_FEE = 1_000_000_000  # 1 gwei, used when eth_maxPriorityFeePerGas is missing

MPC = 1
HE = 2


class TaskStatus(IntEnum):
    NONE = 0
    OPEN = 1
    COMPUTING = 2
    REPORTED = 3
    FINALIZED = 4
    REFUNDED = 5


@dataclass(frozen=True)
class NodeInfo:
    address: str
    peer_id: str
    capabilities: int
    stake: int
    locked: int
    unbonding: int
    unbond_at: int

    @property
    def registered(self) -> bool:
        return bool(self.peer_id)

    @property
    def free_stake(self) -> int:
        return self.stake - self.locked


@dataclass(frozen=True)
class TaskInfo:
    task_id: int
    requester: str
    program_id: bytes
    params_digest: bytes
    capability: int
    committee_size: int
    quorum: int
    reward: int
    seat_deadline: int
    report_deadline: int
    status: TaskStatus
    seats_taken: int
    reported_at: int
    result_digest: bytes


@dataclass(frozen=True)
class ChainEvent:
    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class TxOutcome:
    action: str
    tx_hash: str
    block_number: int
    gas_used: int


# one nonce lock per sender address, shared by every client in this process
_nonce_locks: dict[str, threading.Lock] = {}
_nonce_locks_guard = threading.Lock()


def _nonce_lock(address: str) -> threading.Lock:
    with _nonce_locks_guard:
        return _nonce_locks.setdefault(address.lower(), threading.Lock())


def endpoint_of(w3: Web3) -> str:
    """Best-effort human-readable name of the RPC endpoint (for error messages)."""
    provider = w3.provider
    uri = getattr(provider, "endpoint_uri", None)
    return str(uri) if uri else type(provider).__name__


def decode_revert_reason(exc: BaseException) -> str:
    """Extract the contract's revert string from a web3 ContractLogicError (or similar)."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):  # some nodes nest {"data": "0x..."}
        data = data.get("data")
    raw: bytes | None = None
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
    elif isinstance(data, str) and data.startswith("0x"):
        with contextlib.suppress(ValueError):
            raw = bytes.fromhex(data[2:])
    if raw and raw[:4] == ERROR_SELECTOR:
        with contextlib.suppress(Exception):
            return str(abi_decode(["string"], raw[4:])[0])
    if raw and raw[:4] == PANIC_SELECTOR:
        with contextlib.suppress(Exception):
            return f"panic 0x{abi_decode(['uint256'], raw[4:])[0]:02x}"
    message = getattr(exc, "message", None) or (str(exc.args[0]) if exc.args else str(exc))
    for prefix in ("execution reverted: ", "execution reverted:", "execution reverted"):
        if message.startswith(prefix):
            message = message[len(prefix) :].strip()
            break
    return message or "reverted without reason"


try:  # the in-process EthereumTesterProvider raises its own type instead of ContractLogicError
    from eth_tester.exceptions import TransactionFailed as _TesterFailed
except ImportError:  # pragma: no cover - eth-tester is a test/dev dependency

    class _TesterFailed(Exception):  # type: ignore[no-redef]
        pass


REVERT_ERRORS: tuple[type[BaseException], ...] = (ContractLogicError, _TesterFailed)


@contextlib.contextmanager
def rpc_guard(w3: Web3, action: str) -> Iterator[None]:
    """Map transport failures to RpcUnreachable and contract rejections to TransactionReverted."""
    try:
        yield
    except REVERT_ERRORS as exc:
        raise TransactionReverted(action, decode_revert_reason(exc)) from exc
    except (ProviderConnectionError, ConnectionError, OSError) as exc:
        raise RpcUnreachable(endpoint_of(w3), type(exc).__name__) from exc


def fee_fields(w3: Web3) -> dict[str, int]:
    """EIP-1559 fee fields when the chain has a base fee, legacy gasPrice otherwise."""
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:
        return {"gasPrice": int(w3.eth.gas_price)}
    try:
        priority = int(w3.eth.max_priority_fee)
    except Exception:  # method missing on some nodes
        priority = DEFAULT_PRIORITY_FEE
    return {"maxFeePerGas": 2 * int(base_fee) + priority, "maxPriorityFeePerGas": priority}


def send_transaction(
    w3: Web3,
    account: LocalAccount,
    action: str,
    *,
    to: str | None,
    data: bytes | str,
    value: int = 0,
    receipt_timeout: float = 120.0,
) -> Any:
    """Estimate, sign locally, send raw and wait for a successful receipt.

    Raises TransactionReverted (at estimate time or on a failed receipt), InsufficientFunds,
    RpcUnreachable. Returns the web3 receipt.
    """
    sender = account.address
    call: dict[str, Any] = {"from": sender, "data": data, "value": value}
    if to is not None:
        call["to"] = to
    with rpc_guard(w3, action):
        balance = int(w3.eth.get_balance(sender))
        fees = fee_fields(w3)
        fee_per_gas = fees.get("maxFeePerGas", fees.get("gasPrice", 0))
        # nodes refuse to estimate a tx the sender cannot afford: check the floor first
        if balance < value + BASE_TX_GAS * fee_per_gas:
            raise InsufficientFunds(sender, value + BASE_TX_GAS * fee_per_gas, balance)
        # estimate against the block the tx will land in: on an automining chain with no traffic
        # "latest" keeps a stale timestamp, so time-gated calls (finalize) would never pass
        estimate = int(w3.eth.estimate_gas(call, "pending"))  # reverts surface with the reason
        gas = min(
            estimate * GAS_MARGIN_NUM // GAS_MARGIN_DEN + GAS_MARGIN_ADD,
            int(w3.eth.get_block("latest")["gasLimit"]),
        )
        needed = value + gas * fee_per_gas
        if balance < needed:
            raise InsufficientFunds(sender, needed, balance)
        chain_id = int(w3.eth.chain_id)
        with _nonce_lock(sender):
            nonce = int(w3.eth.get_transaction_count(sender, "pending"))
            tx = {**call, "gas": gas, "nonce": nonce, "chainId": chain_id, **fees}
            if fees.get("maxFeePerGas") is not None:
                tx["type"] = 2
            signed = account.sign_transaction(tx)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=receipt_timeout)
        except (TimeExhausted, TransactionNotFound) as exc:
            raise ContractsError(
                f"{action}: no receipt for {tx_hash.hex()} within {receipt_timeout:.0f}s"
            ) from exc
    if receipt["status"] != 1:
        raise TransactionReverted(action, _replay_reason(w3, call, receipt))
    return receipt


def _replay_reason(w3: Web3, call: dict[str, Any], receipt: Any) -> str:
    """A tx that estimated fine but failed on-chain: re-run it as a call to recover the reason."""
    try:
        w3.eth.call(call, receipt["blockNumber"] - 1)
    except REVERT_ERRORS as exc:
        return decode_revert_reason(exc)
    except Exception:  # noqa: BLE001 - best effort only
        pass
    return f"reverted on-chain (tx {receipt['transactionHash'].hex()})"


class ChainClient:
    """One account's view of (and handle on) a deployed dnode contract."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount | None = None,
        *,
        receipt_timeout: float = 120.0,
        check_chain: bool = True,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.receipt_timeout = receipt_timeout
        self.address = to_checksum_address(deployment.address)
        self.contract = w3.eth.contract(address=self.address, abi=deployment.abi)
        self.last_tx: TxOutcome | None = None
        self._topics: dict[bytes, Any] = {}
        for item in deployment.abi:
            if item.get("type") == "event":
                self._topics[event_abi_to_log_topic(item)] = getattr(
                    self.contract.events, item["name"]
                )
        if check_chain:
            actual = self.chain_id()
            if actual != deployment.chain_id:
                raise ChainMismatch(deployment.chain_id, actual)

    # ------------------------------------------------------------------ plumbing

    def chain_id(self) -> int:
        with rpc_guard(self.w3, "eth_chainId"):
            return int(self.w3.eth.chain_id)

    def _require_account(self, action: str) -> LocalAccount:
        if self.account is None:
            raise ContractsError(f"{action}: this client has no signing account (read-only)")
        return self.account

    def _transact(self, action: str, fn: str, *args: Any, value: int = 0) -> Any:
        account = self._require_account(action)
        data = self.contract.encode_abi(fn, args=list(args))
        receipt = send_transaction(
            self.w3,
            account,
            action,
            to=self.address,
            data=data,
            value=value,
            receipt_timeout=self.receipt_timeout,
        )
        self.last_tx = TxOutcome(
            action=action,
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x"),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )
        return receipt

    def _call(self, fn: str, *args: Any) -> Any:
        with rpc_guard(self.w3, fn):
            return getattr(self.contract.functions, fn)(*args).call()

    # ------------------------------------------------------------------ registry

    def register(self, peer_id: str, capabilities: int = MPC) -> TxOutcome:
        """Register (or update) this account's node with its libp2p peer id."""
        self._transact("register", "register", peer_id, capabilities)
        return self._last()

    def stake(self, wei: int) -> TxOutcome:
        self._transact("stake", "stake", value=wei)
        return self._last()

    def unbond(self, wei: int) -> TxOutcome:
        self._transact("unbond", "unbond", wei)
        return self._last()

    def withdraw_unbonded(self) -> TxOutcome:
        self._transact("withdraw_unbonded", "withdraw_unbonded")
        return self._last()

    def withdraw(self) -> TxOutcome:
        self._transact("withdraw", "withdraw")
        return self._last()

    # ------------------------------------------------------------------ market / oracle

    def post_task(
        self,
        program_id: bytes | str,
        params_digest: bytes | str,
        *,
        capability: int = MPC,
        committee_size: int = 3,
        seat_deadline: int,
        report_deadline: int,
        reward: int,
    ) -> int:
        """Post a task escrowing ``reward`` wei; returns the task id from the TaskPosted log."""
        receipt = self._transact(
            "post_task",
            "post_task",
            _bytes32(program_id),
            _bytes32(params_digest),
            capability,
            committee_size,
            seat_deadline,
            report_deadline,
            value=reward,
        )
        for ev in self.contract.events.TaskPosted().process_receipt(receipt, errors=_DISCARD):
            return int(ev["args"]["task_id"])
        raise ContractsError("post_task: receipt has no TaskPosted event")

    def claim_seat(self, task_id: int) -> TxOutcome:
        self._transact("claim_seat", "claim_seat", task_id)
        return self._last()

    def report(self, task_id: int, result: bytes, signatures: list[bytes]) -> TxOutcome:
        """Submit the committee result with seat-holder signatures (see oracle.attestation)."""
        self._transact("report", "report", task_id, bytes(result), [bytes(s) for s in signatures])
        return self._last()

    def finalize(self, task_id: int) -> TxOutcome:
        self._transact("finalize", "finalize", task_id)
        return self._last()

    def refund(self, task_id: int) -> TxOutcome:
        self._transact("refund", "refund", task_id)
        return self._last()

    def _last(self) -> TxOutcome:
        assert self.last_tx is not None
        return self.last_tx

    # ------------------------------------------------------------------ views

    def node_info(self, address: str | None = None) -> NodeInfo:
        addr = to_checksum_address(address or self._require_account("node_info").address)
        peer_id, caps, stake, locked, unbonding, unbond_at = self._call("node_info", addr)
        return NodeInfo(addr, peer_id, caps, stake, locked, unbonding, unbond_at)

    def node_of_peer(self, peer_id: str) -> str | None:
        addr = self._call("node_of_peer", peer_id)
        return None if int(addr, 16) == 0 else to_checksum_address(addr)

    def is_active(self, address: str) -> bool:
        return bool(self._call("is_active", to_checksum_address(address)))

    def task_info(self, task_id: int) -> TaskInfo:
        r = self._call("task_info", task_id)
        return TaskInfo(
            task_id=task_id,
            requester=to_checksum_address(r[0]),
            program_id=bytes(r[1]),
            params_digest=bytes(r[2]),
            capability=r[3],
            committee_size=r[4],
            quorum=r[5],
            reward=r[6],
            seat_deadline=r[7],
            report_deadline=r[8],
            status=TaskStatus(r[9]),
            seats_taken=r[10],
            reported_at=r[11],
            result_digest=bytes(r[12]),
        )

    def seats(self, task_id: int) -> list[str]:
        taken = self.task_info(task_id).seats_taken
        return [to_checksum_address(self._call("seat", task_id, i)) for i in range(taken)]

    def seat_index(self, task_id: int, address: str) -> int | None:
        idx = int(self._call("seat_index", task_id, to_checksum_address(address)))
        return None if idx < 0 else idx

    def signers_bitmap(self, task_id: int) -> int:
        return int(self._call("signers_bitmap", task_id))

    def credits(self, address: str | None = None) -> int:
        addr = to_checksum_address(address or self._require_account("credits").address)
        return int(self._call("credits", addr))

    def result_of(self, task_id: int) -> tuple[TaskStatus, bytes, bytes]:
        status, digest, result = self._call("result_of", task_id)
        return TaskStatus(status), bytes(digest), bytes(result)

    def task_count(self) -> int:
        return int(self._call("task_count"))

    def params(self) -> dict[str, int]:
        """The immutable network parameters as deployed."""
        names = ("min_stake", "seat_collateral", "unbond_delay", "challenge_period")
        return {n: int(self._call(n)) for n in names}

    def balance_of_contract(self) -> int:
        with rpc_guard(self.w3, "eth_getBalance"):
            return int(self.w3.eth.get_balance(self.address))

    def latest_block(self) -> int:
        with rpc_guard(self.w3, "eth_blockNumber"):
            return int(self.w3.eth.block_number)

    def block_timestamp(self, block: int | str = "latest") -> int:
        with rpc_guard(self.w3, "eth_getBlockByNumber"):
            return int(self.w3.eth.get_block(block)["timestamp"])

    def events(self, from_block: int, to_block: int | str = "latest") -> list[ChainEvent]:
        """Decoded contract logs in [from_block, to_block], in chain order."""
        with rpc_guard(self.w3, "eth_getLogs"):
            logs = self.w3.eth.get_logs(
                {"address": self.address, "fromBlock": from_block, "toBlock": to_block}
            )
        out: list[ChainEvent] = []
        for log in logs:
            topics = log.get("topics") or []
            if not topics:
                continue
            event = self._topics.get(bytes(topics[0]))
            if event is None:
                continue
            decoded = event().process_log(log)
            out.append(
                ChainEvent(
                    name=decoded["event"],
                    args={k: _plain(v) for k, v in decoded["args"].items()},
                    block_number=int(log["blockNumber"]),
                    tx_hash="0x" + bytes(log["transactionHash"]).hex().removeprefix("0x"),
                    log_index=int(log["logIndex"]),
                )
            )
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out


def _bytes32(value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return bytes(value)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


try:  # web3 >= 6
    from web3.logs import DISCARD as _DISCARD
except ImportError:  # pragma: no cover
    _DISCARD = None  # type: ignore[assignment]
