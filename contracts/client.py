"""Typed client for the deployed dnode contract.

Every transaction is built, gas-estimated, signed locally and sent with
``eth_sendRawTransaction`` so the client works against any EVM JSON-RPC node (anvil, geth,
eth-tester) without node-managed accounts. Contract rejections surface as
``TransactionReverted(action, reason)`` carrying the namespaced revert string.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_account.signers.local import LocalAccount
from eth_typing import ABIEvent, BlockIdentifier, HexStr
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address
from eth_utils.abi import collapse_if_tuple, function_abi_to_4byte_selector
from web3 import Web3
from web3._utils.abi import map_abi_data
from web3._utils.normalizers import BASE_RETURN_NORMALIZERS
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
)
from web3.types import RPCEndpoint, TxParams

from dnode.contracts.data_market import (
    DATASET_INFO_TYPE,
    BudgetKind,
    DatasetInfo,
    TaskDataset,
    dataset_from_abi,
    unpack_entry,
    unwrap,
)
from dnode.contracts.errors import (
    ChainMismatch,
    ContractsError,
    InsufficientFunds,
    RpcUnreachable,
    TransactionReverted,
    dataset_error,
)
from dnode.contracts.manifest import Deployment
from dnode.contracts.rpc import ResilientHTTPProvider, RetryPolicy, RpcStats
from dnode.contracts.signing import sign_join

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
    DISPUTED = 6
    RECOMPUTING = 7
    OVERTURNED = 8


TERMINAL_STATUSES = (TaskStatus.FINALIZED, TaskStatus.REFUNDED, TaskStatus.OVERTURNED)
SIG_LEN = 65
RERUN_EXTRA = 2
MAX_SEATS = 16 + RERUN_EXTRA  # market.vy MAX_COMMITTEE + RERUN_EXTRA
SKIP_DELAY, SKIP_STEP = 10, 10  # market.vy (scheduler/sortition.py mirrors them)
# market.vy RERUN_SEAT_WINDOW: the shortest re-execution seat window (dispute_period // 4) a
# deployment accepts, so honest nodes can seat past MAX_SEATS silent top-ranked candidates
RERUN_SEAT_WINDOW = SKIP_DELAY + SKIP_STEP * MAX_SEATS

# packed Task.meta / Dispute.meta layouts (see contracts/vyper/market.vy)
CAP_OFF, SIZE_OFF, SEAT_DL_OFF, REPORT_DL_OFF = 0, 8, 16, 56
REPORTED_AT_OFF, SIGNERS_OFF, DECLINED_OFF = 96, 136, 152
POSTED_AT_OFF, SNAPSHOT_OFF, SKIPS_OFF = 168, 208, 248
D_SEAT_DL_OFF, D_REPORT_DL_OFF, D_SIGNERS_OFF, D_DECLINED_OFF = 0, 40, 80, 104
D_SEED_OFF, D_SNAPSHOT_OFF, D_SKIPS_OFF, D_CLAIMS_OFF = 128, 168, 208, 216
CALLBACK_GAS_OFF, SEED_BLOCK_OFF = 160, 192  # Task.ext: callback | gas << 160 | seed << 192
DRAW_BITS = 14  # Task.draws / Dispute.draws: seat i's draw at bits 14 i
TIME_BITS = 40
TASK_ABI_TYPE = "(address,uint256,bytes32,uint256,uint256,address[],uint256,bytes32)"
DISPUTE_ABI_TYPE = "(address,uint256,address[],uint256,bytes32)"
TASK_EVENTS = frozenset(
    {
        "TaskPosted",
        "CommitteeFormed",
        "SeatDeclined",
        "ResultReported",
        "TaskFinalized",
        "TaskRefunded",
        "TaskDisputed",
        "DisputeResolved",
        "Slashed",
        "CallbackRegistered",
        "CallbackDelivered",
        "SeatClaimed",
        "CoSigned",
        "TaskDatasets",
    }
)
MAX_CALLBACK_GAS = 1_000_000  # market.vy


def _bits(word: int, off: int, width: int) -> int:
    return (word >> off) & ((1 << width) - 1)


def _put(word: int, off: int, width: int, value: int) -> int:
    mask = ((1 << width) - 1) << off
    return (word & ~mask) | (value << off)


@dataclass
class TaskRecord:
    """The Task struct the contract stores as a digest; passed in calldata on every call."""

    requester: str
    reward: int
    spec: bytes
    meta: int
    ext: int = 0
    committee: list[str] = field(default_factory=list)
    draws: int = 0
    result_digest: bytes = b"\0" * 32

    @property
    def seed_block(self) -> int:
        """The block whose hash seeds this task's committee sortition (post block + 1)."""
        return _bits(self.ext, SEED_BLOCK_OFF, 64)

    @property
    def callback(self) -> str | None:
        """The consumer contract called back at finalization (None: a plain task)."""
        addr = _bits(self.ext, 0, 160)
        return to_checksum_address(addr.to_bytes(20, "big")) if addr else None

    @property
    def callback_gas(self) -> int:
        return _bits(self.ext, CALLBACK_GAS_OFF, 32)

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.requester,
            self.reward,
            self.spec,
            self.meta,
            self.ext,
            list(self.committee),
            self.draws,
            self.result_digest,
        )

    def digest(self) -> int:
        """What the contract stores (status byte cleared)."""
        enc = abi_encode([TASK_ABI_TYPE], [self.as_abi()])
        return int.from_bytes(keccak(enc), "big") & ~0xFF


@dataclass
class DisputeRecord:
    disputer: str
    meta: int
    committee: list[str] = field(default_factory=list)
    draws: int = 0
    result_digest: bytes = b"\0" * 32

    def as_abi(self) -> tuple[Any, ...]:
        return (self.disputer, self.meta, list(self.committee), self.draws, self.result_digest)

    def digest(self) -> bytes:
        return keccak(abi_encode([DISPUTE_ABI_TYPE], [self.as_abi()]))

    @property
    def seat_deadline(self) -> int:
        return _bits(self.meta, D_SEAT_DL_OFF, TIME_BITS)

    @property
    def report_deadline(self) -> int:
        return _bits(self.meta, D_REPORT_DL_OFF, TIME_BITS)

    @property
    def signers_bitmap(self) -> int:
        return _bits(self.meta, D_SIGNERS_OFF, 24)

    @property
    def declined_bitmap(self) -> int:
        return _bits(self.meta, D_DECLINED_OFF, 24)

    @property
    def seed_block(self) -> int:
        return _bits(self.meta, D_SEED_OFF, 40)

    @property
    def slot_snapshot(self) -> int:
        return _bits(self.meta, D_SNAPSHOT_OFF, 40)

    @property
    def skips(self) -> int:
        return _bits(self.meta, D_SKIPS_OFF, 8)

    @property
    def claims_until(self) -> int:
        return _bits(self.meta, D_CLAIMS_OFF, TIME_BITS) if self.skips else 0

    def seat_draws(self) -> list[int]:
        return unpack_draws(self.draws, len(self.committee))


EMPTY_DISPUTE = DisputeRecord("0x" + "00" * 20, 0)


def unpack_draws(packed: int, n: int) -> list[int]:
    """The sortition draw of each of ``n`` seats from a packed Task/Dispute ``draws`` word."""
    return [_bits(packed, DRAW_BITS * i, DRAW_BITS) for i in range(n)]


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
class NodeTerms:
    """A node's declared price per seat and capacity (undeclared: 0 and unbounded)."""

    price: int
    capacity: int
    declared: bool

    def admits(self, offer: int, seats_held: int) -> str | None:
        """None if a seat at ``offer`` wei fits these terms, else why not."""
        if not self.declared:
            return None
        if self.price > offer:
            return "price"
        if seats_held >= self.capacity:
            return "capacity"
        return None


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
    committee: tuple[str, ...] = ()
    signers_bitmap: int = 0
    declined_bitmap: int = 0
    result: bytes | None = None
    record: TaskRecord | None = None
    dispute: DisputeRecord | None = None
    rerun_result: bytes | None = None
    callback: str | None = None
    callback_gas: int = 0
    callback_ok: bool | None = None  # CallbackDelivered.success (None: no call made yet)
    seed_block: int = 0  # the sortition seed is this block's hash
    refund_reason: str = ""  # TaskRefunded.reason (see docs/protocol.md)
    compute_window: int = 0  # seconds from formation to the report deadline
    posted_at: int = 0
    slot_snapshot: int = 0  # slot count at posting: draws are taken modulo it
    draws: tuple[int, ...] = ()  # each seat's sortition draw (CommitteeFormed / SeatClaimed)
    skips: int = 0  # candidates the formation skipped that may still claim a seat
    claims_until: int = 0  # end of the seat-claim period (0: nobody was skipped)
    datasets: tuple[TaskDataset, ...] = ()  # TaskDatasets: what a task over datasets escrowed


@dataclass(frozen=True)
class ChainEvent:
    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int
    block_hash: str = ""  # lets a follower tell a canonical log from one of a reorged block


@dataclass(frozen=True)
class TxOutcome:
    action: str
    tx_hash: str
    block_number: int
    gas_used: int


# one nonce lock per sender address, shared by every client in this process
_nonce_locks: dict[str, threading.Lock] = {}
_nonce_locks_guard = threading.Lock()


def _nonce_lock_of(address: str) -> threading.Lock:
    with _nonce_locks_guard:
        return _nonce_locks.setdefault(address.lower(), threading.Lock())


@contextlib.contextmanager
def _nonce_lock(address: str) -> Iterator[None]:
    """Hold the sender's nonce from reading it to broadcasting, across threads and across
    processes of this user (two `dnode task post` of one account at once read the same
    pending nonce and one failed with "nonce too low")."""
    with _nonce_lock_of(address):
        path = Path(tempfile.gettempdir()) / f"dnode-nonce-{address.lower()}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # e.g. another user's file: the in-process lock still holds
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


def endpoint_of(w3: Web3) -> str:
    """Best-effort human-readable name of the RPC endpoint (for error messages)."""
    provider = w3.provider
    if isinstance(provider, ResilientHTTPProvider):
        return ", ".join(provider.endpoints)
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


def prepare_transaction(
    w3: Web3,
    account: LocalAccount,
    action: str,
    *,
    to: str | None,
    data: bytes | str,
    value: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check funds and estimate gas (a deterministic revert raises TransactionReverted here and
    must not be retried); returns (call, unsigned tx fields without the nonce)."""
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
        estimate = int(
            w3.eth.estimate_gas(cast(TxParams, call), "pending")
        )  # reverts surface with the reason
        gas = min(
            estimate * GAS_MARGIN_NUM // GAS_MARGIN_DEN + GAS_MARGIN_ADD,
            int(w3.eth.get_block("latest")["gasLimit"]),
        )
        needed = value + gas * fee_per_gas
        if balance < needed:
            raise InsufficientFunds(sender, needed, balance)
        chain_id = int(w3.eth.chain_id)
    tx = {**call, "gas": gas, "chainId": chain_id, **fees}
    if fees.get("maxFeePerGas") is not None:
        tx["type"] = 2
    return call, tx


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
    RpcUnreachable. Returns the web3 receipt. (Long-lived nodes send through
    ``contracts.outbox.TxOutbox`` instead: recorded before broadcast, gapless nonces.)
    """
    sender = account.address
    call, unsigned = prepare_transaction(w3, account, action, to=to, data=data, value=value)
    with rpc_guard(w3, action):
        with _nonce_lock(sender):
            nonce = int(w3.eth.get_transaction_count(sender, "pending"))
            tx = {**unsigned, "nonce": nonce}
            signed = account.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=receipt_timeout)
        except (TimeExhausted, TransactionNotFound) as exc:
            raise ContractsError(
                f"{action}: no receipt for {tx_hash.hex()} within {receipt_timeout:.0f}s"
            ) from exc
    if receipt["status"] != 1:
        raise TransactionReverted(action, replay_reason(w3, call, receipt))
    return receipt


def replay_reason(w3: Web3, call: dict[str, Any], receipt: Any) -> str:
    """A tx that estimated fine but failed on-chain: re-run it as a call to recover the reason."""
    try:
        w3.eth.call(cast(TxParams, call), receipt["blockNumber"] - 1)
    except REVERT_ERRORS as exc:
        return decode_revert_reason(exc)
    except Exception:  # noqa: BLE001 - best effort only
        pass
    return f"reverted on-chain (tx {receipt['transactionHash'].hex()})"


def connect(
    rpc_url: str | Sequence[str], timeout: float = 30.0, policy: RetryPolicy | None = None
) -> Web3:
    """A web3 client for one or more EVM JSON-RPC endpoints of one chain (no request yet).

    Calls go through ResilientHTTPProvider: transient failures are retried with backoff and
    fail over to the next endpoint; reverts and other deterministic errors are not retried.
    web3's validation middleware asks eth_chainId before every eth_call and estimate; an
    endpoint's chain id never changes, so that one method is cached (it was ~17% of a busy
    node's samples in the network benchmark).
    """
    urls = [rpc_url] if isinstance(rpc_url, str) else list(rpc_url)
    policy = policy or RetryPolicy(timeout=timeout)
    provider = ResilientHTTPProvider(
        urls,
        policy,
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


class TxSender(Protocol):
    """What sends a client's transactions instead of ``send_transaction`` (a node installs
    ``contracts.outbox.TxOutbox``: recorded before broadcast, gapless nonces)."""

    def send(
        self,
        w3: Web3,
        account: LocalAccount,
        action: str,
        *,
        to: str | None,
        data: bytes | str,
        value: int = 0,
        receipt_timeout: float = 120.0,
    ) -> Any: ...


class DrawLookup(Protocol):
    """Each member's sortition draw for a round (``scheduler.candidates.lookup_draws``); the
    chain bindings sit below the scheduler, so whoever builds the client passes it in."""

    def __call__(
        self, chain: ChainClient, info: TaskInfo, round: int, members: list[str]
    ) -> list[int]: ...


def rpc_stats(w3: Web3) -> RpcStats | None:
    """The retry/failover counters of a client made by ``connect`` (None for other providers)."""
    provider = w3.provider
    return provider.stats if isinstance(provider, ResilientHTTPProvider) else None


class _Unsynced(Exception):
    """The events read do not rebuild the on-chain record (read again before giving up)."""


@dataclass(frozen=True)
class _View:
    """A view function's selector and types, worked out once per client (web3's contract
    call looks the ABI element up, validates it and hashes its signature on every call:
    most of a node's CPU per ``eth_call`` in a py-spy profile of a busy test cluster)."""

    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _views(abi: Sequence[Any]) -> dict[str, _View]:
    """The ABI's functions by name (overloaded names are left to web3)."""
    fns = [e for e in abi if e.get("type") == "function"]
    names = [e["name"] for e in fns]
    return {
        e["name"]: _View(
            function_abi_to_4byte_selector(e),
            tuple(collapse_if_tuple(i) for i in e.get("inputs", [])),
            tuple(collapse_if_tuple(o) for o in e.get("outputs", [])),
        )
        for e in fns
        if names.count(e["name"]) == 1
    }


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
        self._views = _views(deployment.abi)
        self.last_tx: TxOutcome | None = None
        # set by a long-lived node: every tx is recorded before broadcast (contracts.outbox)
        self.outbox: TxSender | None = None
        # set by callers that let form_committee look draws up (scheduler.candidates)
        self.draw_lookup: DrawLookup | None = None
        self._topics: dict[bytes, Any] = {}
        for item in deployment.abi:
            if item.get("type") == "event":
                self._topics[event_abi_to_log_topic(cast(ABIEvent, item))] = getattr(
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
        send = self.outbox.send if self.outbox is not None else send_transaction
        receipt = send(
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

    def _call(self, fn: str, *args: Any, block: int | None = None) -> Any:
        """``fn(*args)`` as an ``eth_call``, returning what web3's contract call returns
        (one value, or a list; addresses checksummed), encoded and decoded from the cached
        :class:`_View`. Arguments eth-abi does not take as they are (web3 normalises hex
        strings for bytes, say) and undecodable answers go through web3's own path."""
        with rpc_guard(self.w3, fn):
            view = self._views.get(fn)
            data = None
            if view is not None:
                with contextlib.suppress(EncodingError, TypeError, ValueError):
                    data = view.selector + abi_encode(view.inputs, args)
            if view is not None and data is not None:
                tx: TxParams = {"to": self.address, "data": HexStr("0x" + data.hex())}
                raw = self.w3.eth.call(tx, block_identifier=block)
                try:
                    out = abi_decode(view.outputs, raw)
                except DecodingError:
                    pass  # e.g. no code at the address: web3's call says so in its words
                else:
                    norm = map_abi_data(BASE_RETURN_NORMALIZERS, view.outputs, out)
                    return norm[0] if len(norm) == 1 else norm
        return self._call_via_web3(fn, *args, block=block)

    def _call_via_web3(self, fn: str, *args: Any, block: int | None = None) -> Any:
        with rpc_guard(self.w3, fn):
            call = getattr(self.contract.functions, fn)(*args)
            return call.call() if block is None else call.call(block_identifier=block)

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

    def set_terms(self, price: int, capacity: int) -> TxOutcome:
        """Declare this node's price per seat (wei) and how many seats it holds at once."""
        self._transact("set_terms", "set_terms", price, capacity)
        return self._last()

    def sync_slots(self, node: str | None = None) -> TxOutcome:
        """Append up to 64 more of a node's owed sortition slots (stake() appends the first 64)."""
        addr = to_checksum_address(node or self._require_account("sync_slots").address)
        self._transact("sync_slots", "sync_slots", addr)
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
        compute_window: int | None = None,
        report_deadline: int | None = None,
        reward: int,
        callback: str | None = None,
        callback_gas: int = 0,
    ) -> int:
        """Post a task escrowing ``reward`` wei; returns the task id from the TaskPosted log.

        ``compute_window``: seconds the committee has from its formation to report. Callers
        written for absolute deadlines may pass ``report_deadline`` instead: the window is then
        ``report_deadline - seat_deadline`` (raised to the deployment's minimum).
        ``callback``: a consumer contract called with the result at finalization (with
        ``callback_gas`` gas; 0 stores the result for ``result_of`` without a call)."""
        if compute_window is None:
            floor = int(self.deployment.params.get("min_compute_window", 0))
            window = (report_deadline or seat_deadline) - seat_deadline
            compute_window = max(window, floor)
        extra: tuple[Any, ...] = ()
        if callback is not None:
            extra = (to_checksum_address(callback), callback_gas)
        receipt = self._transact(
            "post_task",
            "post_task",
            _bytes32(program_id),
            _bytes32(params_digest),
            capability,
            committee_size,
            seat_deadline,
            compute_window,
            *extra,
            value=reward,
        )
        return self._posted_task_id(receipt, "post_task")

    def _posted_task_id(self, receipt: Any, action: str) -> int:
        """The task id a posting's TaskPosted log names."""
        for ev in self.contract.events.TaskPosted().process_receipt(receipt, errors=_DISCARD):
            return int(ev["args"]["task_id"])
        raise ContractsError(f"{action}: receipt has no TaskPosted event")

    def join_signature(self, task_id: int, round: int = 0) -> bytes:
        """This account's signed intent to sit on ``task_id``'s committee (round 1: rerun)."""
        account = self._require_account("join_signature")
        return sign_join(account, self.deployment.chain_id, self.address, task_id, round)

    def form_committee(
        self,
        task_id: int,
        members: list[str],
        signatures: list[bytes | None],
        draws: list[int] | None = None,
    ) -> TxOutcome:
        """Bind the committee in one transaction (the sender's own signature may be None).

        ``draws``: the sortition draw each member claims; None looks up each member's first
        draw within the current window (a member never drawn claims draw 0, which the
        contract rejects)."""
        info = self.task_info(task_id)
        if info.record is None:
            raise TransactionReverted("form_committee", "market: unknown task")
        if draws is None:
            draws = self._draws_for(info, 0, members)
        self._transact(
            "form_committee",
            "form_committee",
            task_id,
            info.record.as_abi(),
            [to_checksum_address(m) for m in members],
            _pack_sigs(signatures),
            list(draws),
        )
        return self._last()

    def _draws_for(self, info: TaskInfo, round: int, members: list[str]) -> list[int]:
        if self.draw_lookup is None:
            raise ContractsError("pass each member's sortition draw (or set draw_lookup)")
        return self.draw_lookup(self, info, round, members)

    def claim_seat(self, task_id: int, draw: int) -> TxOutcome:
        """Take back a seat the formation skipped this node for (its ``draw`` ranks above the
        committee's worst member); only during the claim period (see docs/protocol.md)."""
        rec, disp = self.task_records(task_id)
        d = (disp or EMPTY_DISPUTE).as_abi()
        self._transact("claim_seat", "claim_seat", task_id, rec.as_abi(), d, draw)
        return self._last()

    def cosign(self, task_id: int, signature: bytes) -> TxOutcome:
        """Add a seat holder's report signature left out of the report (challenge window)."""
        rec = self.task_record(task_id)
        self._transact("cosign", "cosign", task_id, rec.as_abi(), bytes(signature))
        return self._last()

    def report(self, task_id: int, result: bytes, signatures: list[bytes]) -> TxOutcome:
        """Submit the committee result with seat-holder signatures (see oracle.attestation)."""
        rec = self.task_record(task_id)
        self._transact(
            "report", "report", task_id, rec.as_abi(), bytes(result), _pack_sigs(signatures)
        )
        return self._last()

    def finalize(self, task_id: int) -> TxOutcome:
        self._transact("finalize", "finalize", task_id, self.task_record(task_id).as_abi())
        return self._last()

    def cancel(self, task_id: int) -> TxOutcome:
        """Refund a task whose committee missed a deadline (slashing non-delivering seats)."""
        self._transact("cancel", "cancel", task_id, self.task_record(task_id).as_abi())
        return self._last()

    refund = cancel  # the name the 0.1 client used

    def decline(self, task_id: int, reason: str) -> TxOutcome:
        """Give up this account's seat (original or re-execution committee) with a reason."""
        rec, disp = self.task_records(task_id)
        d = (disp or EMPTY_DISPUTE).as_abi()
        self._transact("decline", "decline", task_id, rec.as_abi(), d, reason[:128])
        return self._last()

    def dispute_bond_for(self, task_id: int) -> int:
        """What disputing ``task_id`` posts: max(dispute_bond, reward) (court.vy ``_bond``),
        so the bond can pay the re-execution the task's reward."""
        return max(int(self._call("dispute_bond")), self.task_record(task_id).reward)

    def dispute(self, task_id: int) -> TxOutcome:
        """Challenge the reported result, posting the bond (max(dispute_bond, reward))."""
        rec = self.task_record(task_id)
        bond = max(int(self._call("dispute_bond")), rec.reward)
        self._transact("dispute", "dispute", task_id, rec.as_abi(), value=bond)
        return self._last()

    def form_rerun_committee(
        self,
        task_id: int,
        members: list[str],
        signatures: list[bytes | None],
        draws: list[int] | None = None,
    ) -> TxOutcome:
        """Bind the re-execution committee (round 1; ``draws`` as for form_committee)."""
        info = self.task_info(task_id)
        if info.record is None:
            raise TransactionReverted("form_rerun_committee", "market: unknown task")
        disp = info.dispute or EMPTY_DISPUTE
        if draws is None:
            draws = self._draws_for(info, 1, members)
        self._transact(
            "form_rerun_committee",
            "form_rerun_committee",
            task_id,
            info.record.as_abi(),
            disp.as_abi(),
            [to_checksum_address(m) for m in members],
            _pack_sigs(signatures),
            list(draws),
        )
        return self._last()

    def report_rerun(self, task_id: int, result: bytes, signatures: list[bytes]) -> TxOutcome:
        rec, disp = self.task_records(task_id)
        disp = disp or EMPTY_DISPUTE
        self._transact(
            "report_rerun",
            "report_rerun",
            task_id,
            rec.as_abi(),
            disp.as_abi(),
            bytes(result),
            _pack_sigs(signatures),
        )
        return self._last()

    def resolve_dispute(self, task_id: int) -> TxOutcome:
        rec, disp = self.task_records(task_id)
        disp = disp or EMPTY_DISPUTE
        self._transact("resolve_dispute", "resolve_dispute", task_id, rec.as_abi(), disp.as_abi())
        return self._last()

    # ------------------------------------------------------------------ data marketplace

    def _data_transact(self, action: str, *args: Any, value: int = 0) -> Any:
        """A data function (dnode_data extension): its reverts become typed DatasetRefused."""
        self._require_data()
        try:
            return self._transact(action, action, *args, value=value)
        except TransactionReverted as err:
            raise dataset_error(err) from err

    def _data_call(self, fn: str, types: list[str], *args: Any) -> tuple[Any, ...]:
        self._require_data()
        return unwrap(self._call(fn, *args), types)

    def _require_data(self) -> None:
        if not any(e.get("name") == "register_dataset" for e in self.deployment.abi):
            raise ContractsError(
                "this deployment has no data marketplace (deployed before it; redeploy)"
            )

    def register_dataset(
        self,
        *,
        schema_digest: bytes | str,
        rows: int,
        price: int,
        expiry: int,
        programs: Sequence[bytes | str],
        budget: int,
        budget_kind: BudgetKind = BudgetKind.EPSILON,
        locator: str = "",
    ) -> int:
        """Publish a dataset owned by this account; returns its id. ``budget`` is in
        millionths of epsilon (or rho, for zCDP) and can never be raised later."""
        receipt = self._data_transact(
            "register_dataset",
            _bytes32(schema_digest),
            rows,
            price,
            expiry,
            [_bytes32(p) for p in programs],
            int(budget_kind),
            budget,
            locator,
        )
        for ev in self.contract.events.DatasetRegistered().process_receipt(
            receipt, errors=_DISCARD
        ):
            return int(ev["args"]["dataset_id"])
        raise ContractsError("register_dataset: receipt has no DatasetRegistered event")

    def update_dataset(
        self,
        dataset_id: int,
        *,
        price: int | None = None,
        expiry: int | None = None,
        programs: Sequence[bytes | str] | None = None,
        locator: str | None = None,
    ) -> TxOutcome:
        """Change price, expiry, allowed programs or locator (owner only); None keeps the
        current value. The privacy budget is not changeable."""
        cur = self.dataset_info(dataset_id)
        self._data_transact(
            "update_dataset",
            dataset_id,
            cur.price if price is None else price,
            cur.expiry if expiry is None else expiry,
            list(cur.programs) if programs is None else [_bytes32(p) for p in programs],
            cur.locator if locator is None else locator,
        )
        return self._last()

    def retire_dataset(self, dataset_id: int) -> TxOutcome:
        self._data_transact("retire_dataset", dataset_id)
        return self._last()

    def dataset_info(self, dataset_id: int) -> DatasetInfo:
        """The dataset as stored (``exists`` is False for an unknown id)."""
        (value,) = self._data_call("dataset_info", [DATASET_INFO_TYPE], dataset_id)
        return dataset_from_abi(dataset_id, value)

    def budget_left(self, dataset_id: int) -> int:
        return int(self._data_call("budget_left", ["uint256"], dataset_id)[0])

    def dataset_count(self) -> int:
        return int(self._data_call("dataset_count", ["uint256"])[0])

    def datasets(self) -> list[DatasetInfo]:
        """Every dataset ever registered (retired ones included), by id."""
        return [self.dataset_info(i) for i in range(1, self.dataset_count() + 1)]

    def data_escrow(self) -> int:
        """Wei escrowed for dataset owners by tasks not yet settled."""
        return int(self._data_call("data_escrow", ["uint256"])[0])

    def pending_datasets(self, task_id: int) -> list[TaskDataset]:
        """The datasets of a task whose payments are not settled yet (empty once settled)."""
        (words,) = self._data_call("task_datasets", ["uint256[]"], task_id)
        return [unpack_entry(int(w)) for w in words]

    def data_task_price(self, dataset_ids: Sequence[int]) -> int:
        """What the named datasets cost together right now (wei)."""
        return sum(self.dataset_info(i).price for i in dataset_ids)

    def post_data_task(
        self,
        program_id: bytes | str,
        params_digest: bytes | str,
        *,
        datasets: Sequence[int],
        costs: Sequence[int],
        reward: int,
        seat_deadline: int,
        compute_window: int | None = None,
        capability: int = MPC,
        committee_size: int = 3,
        prices: int | None = None,
    ) -> int:
        """Post a task over datasets; returns its id. Sends ``reward`` plus the datasets'
        prices (``prices``: the total the caller agreed to; read now when None), so a price
        raised since the caller looked makes the post fail instead of costing more."""
        if compute_window is None:
            compute_window = int(self.deployment.params.get("min_compute_window", 60))
        total = self.data_task_price(datasets) if prices is None else prices
        receipt = self._data_transact(
            "post_data_task",
            _bytes32(program_id),
            _bytes32(params_digest),
            capability,
            committee_size,
            seat_deadline,
            compute_window,
            reward,
            list(datasets),
            list(costs),
            value=reward + total,
        )
        return self._posted_task_id(receipt, "post_data_task")

    def settle_datasets(self, task_id: int) -> TxOutcome:
        """Pay the owners (task finalized or overturned) or refund the requester and release
        the budget (task refunded); anyone may call, once per task."""
        rec = self.task_record(task_id)
        self._data_transact("settle_datasets", task_id, rec.as_abi())
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

    def node_terms(self, address: str) -> NodeTerms:
        price, capacity, declared = self._call("node_terms", to_checksum_address(address))
        return NodeTerms(int(price), int(capacity), bool(declared))

    def slot_count(self) -> int:
        """Number of sortition slots ever appended (valid or stale)."""
        return int(self._call("slot_count"))

    def slot_holder(self, pos: int) -> str | None:
        """Owner of sortition slot ``pos`` if it counts, else None (a miss)."""
        addr = self._call("slot_holder", pos)
        return None if int(addr, 16) == 0 else to_checksum_address(addr)

    def slot_holders(self, positions: Sequence[int]) -> dict[int, str | None]:
        """``slot_holder`` of many slots in one JSON-RPC batch (one round trip; sortition reads
        dozens per evaluation). Falls back to one call per slot if the endpoint refuses
        batches."""
        out: dict[int, str | None] = {}
        try:
            with rpc_guard(self.w3, "slot_holder"), self.w3.batch_requests() as batch:
                for pos in positions:
                    batch.add(self.contract.functions.slot_holder(pos))
                results = batch.execute()
            if len(results) != len(positions):
                raise ValueError("batch answered a different number of calls")
            for pos, addr in zip(positions, results, strict=True):
                out[pos] = None if int(str(addr), 16) == 0 else to_checksum_address(str(addr))
        except Exception:  # noqa: BLE001 - no batch support, or a partial answer: one by one
            out = {pos: self.slot_holder(pos) for pos in positions}
        return out

    def slots_owned(self, address: str) -> int:
        return int(self._call("slots_owned", to_checksum_address(address)))

    def is_active(self, address: str) -> bool:
        return bool(self._call("is_active", to_checksum_address(address)))

    def task_status(self, task_id: int) -> TaskStatus:
        return TaskStatus(int(self._call("task_status", task_id)))

    def _task_logs(self, task_id: int, to_block: int | str = "latest") -> list[ChainEvent]:
        topic = "0x" + task_id.to_bytes(32, "big").hex()
        with rpc_guard(self.w3, "eth_getLogs"):
            logs = self.w3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": self.deployment.deploy_block,
                    "toBlock": cast(BlockIdentifier, to_block),
                    "topics": [None, topic],
                }
            )
        return [e for e in self._decode(logs) if e.name in TASK_EVENTS]

    def _rebuild(self, task_id: int) -> TaskInfo | None:
        """Replay the task's events into its record (and dispute record), checked on-chain.
        A mismatch is read again twice, half a second apart, before it is an error: a loaded
        test run's `task contribute` once failed on one on anvil at the moment a committee
        formed (likeliest cause, not proven: its logs and state for one block disagreeing
        for a moment); a lasting mismatch is still an error."""
        for attempt in range(3):
            try:
                return self._rebuild_at(task_id, self.latest_block())
            except _Unsynced as e:
                if attempt == 2:
                    raise ContractsError(str(e)) from None
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _rebuild_at(self, task_id: int, head: int) -> TaskInfo | None:
        # one block for every read: a transaction landing between them (e.g. a committee
        # forming while a client polls) must not make the events and the record disagree
        word = int(self._call("tasks", task_id, block=head))
        if word == 0:
            return None
        rec: TaskRecord | None = None
        disp: DisputeRecord | None = None
        posted: dict[str, Any] = {}
        result: bytes | None = None
        rerun_result: bytes | None = None
        callback_ok: bool | None = None
        refund_reason = ""
        datasets: tuple[TaskDataset, ...] = ()
        for ev in self._task_logs(task_id, head):
            a = ev.args
            if ev.name == "TaskPosted":
                posted = a
                rec = TaskRecord(
                    requester=to_checksum_address(a["requester"]),
                    reward=int(a["reward"]),
                    spec=keccak(
                        abi_encode(["bytes32", "bytes32"], [a["program_id"], a["params_digest"]])
                    ),
                    meta=int(a["capability"])
                    | int(a["committee_size"]) << SIZE_OFF
                    | int(a["seat_deadline"]) << SEAT_DL_OFF
                    | int(a["compute_window"]) << REPORT_DL_OFF
                    | int(a["posted_at"]) << POSTED_AT_OFF
                    | int(a["slot_snapshot"]) << SNAPSHOT_OFF,
                    ext=int(a["seed_block"]) << SEED_BLOCK_OFF,
                )
            elif rec is None:
                continue
            elif ev.name == "CallbackRegistered":
                rec.ext |= int(a["callback"], 16) | int(a["callback_gas"]) << CALLBACK_GAS_OFF
            elif ev.name == "CallbackDelivered":
                callback_ok = bool(a["success"])
            elif ev.name == "CommitteeFormed":
                members: list[str] = [to_checksum_address(m) for m in a["members"]]
                skips = int(a["skips"])
                if a["round"] == 0:
                    rec.committee = members
                    rec.draws = int(a["draws"])
                    rec.meta = _put(rec.meta, REPORT_DL_OFF, TIME_BITS, int(a["report_deadline"]))
                    if skips:
                        rec.meta = _put(
                            rec.meta, REPORTED_AT_OFF, TIME_BITS, int(a["claims_until"])
                        )
                        rec.meta = _put(rec.meta, SKIPS_OFF, 8, skips)
                elif disp is not None:
                    disp.committee = members
                    disp.draws = int(a["draws"])
                    if skips:
                        disp.meta = _put(disp.meta, D_SKIPS_OFF, 8, skips)
                        disp.meta = _put(disp.meta, D_CLAIMS_OFF, TIME_BITS, int(a["claims_until"]))
            elif ev.name == "SeatClaimed":
                seat, node = int(a["seat"]), to_checksum_address(a["node"])
                if a["round"] == 0:
                    rec.committee[seat] = node
                    rec.draws = _put(rec.draws, DRAW_BITS * seat, DRAW_BITS, int(a["draw"]))
                    rec.meta &= ~(1 << (DECLINED_OFF + seat))
                    rec.meta = _put(rec.meta, SKIPS_OFF, 8, _bits(rec.meta, SKIPS_OFF, 8) - 1)
                elif disp is not None:
                    disp.committee[seat] = node
                    disp.draws = _put(disp.draws, DRAW_BITS * seat, DRAW_BITS, int(a["draw"]))
                    disp.meta &= ~(1 << (D_DECLINED_OFF + seat))
                    disp.meta = _put(disp.meta, D_SKIPS_OFF, 8, disp.skips - 1)
            elif ev.name == "CoSigned":
                rec.meta = _put(rec.meta, SIGNERS_OFF, 16, int(a["signers_bitmap"]))
            elif ev.name == "SeatDeclined":
                if a["round"] == 0:
                    rec.meta |= 1 << (DECLINED_OFF + int(a["seat"]))
                elif disp is not None:
                    disp.meta |= 1 << (D_DECLINED_OFF + int(a["seat"]))
            elif ev.name == "ResultReported":
                if a["round"] == 0:
                    result = bytes(a["result"])
                    rec.meta = _put(rec.meta, SIGNERS_OFF, 16, int(a["signers_bitmap"]))
                    rec.meta = _put(rec.meta, REPORTED_AT_OFF, TIME_BITS, int(a["reported_at"]))
                    rec.result_digest = keccak(result)
                elif disp is not None:
                    rerun_result = bytes(a["result"])
                    disp.meta = _put(disp.meta, D_SIGNERS_OFF, 24, int(a["signers_bitmap"]))
                    disp.result_digest = keccak(rerun_result)
            elif ev.name == "TaskDisputed":
                disp = DisputeRecord(
                    to_checksum_address(a["disputer"]),
                    int(a["seat_deadline"]) << D_SEAT_DL_OFF
                    | int(a["report_deadline"]) << D_REPORT_DL_OFF
                    | int(a["seed_block"]) << D_SEED_OFF
                    | int(a["slot_snapshot"]) << D_SNAPSHOT_OFF,
                )
            elif ev.name == "TaskRefunded":
                refund_reason = str(a.get("reason", ""))
            elif ev.name == "TaskDatasets":
                datasets = tuple(
                    TaskDataset(int(i), int(c), int(p))
                    for i, c, p in zip(a["dataset_ids"], a["costs"], a["prices"], strict=True)
                )
        if rec is None or rec.digest() != word & ~0xFF:
            raise _Unsynced(
                f"task {task_id}: the events do not rebuild the on-chain record "
                "(node not fully synced?)"
            )
        if disp is not None and disp.digest() != bytes(self._call("disputes", task_id, block=head)):
            raise _Unsynced(f"task {task_id}: the events do not rebuild the dispute record")
        m = _bits(rec.meta, SIZE_OFF, 8)
        status = TaskStatus(word & 0xFF)
        window = int(posted["compute_window"])
        seat_dl = _bits(rec.meta, SEAT_DL_OFF, TIME_BITS)
        formed = bool(rec.committee)
        skips = _bits(rec.meta, SKIPS_OFF, 8) if formed else 0
        # while OPEN the field holds the window: report the latest deadline it can become
        report_dl = _bits(rec.meta, REPORT_DL_OFF, TIME_BITS) if formed else seat_dl + window
        reported = status not in (TaskStatus.OPEN, TaskStatus.COMPUTING, TaskStatus.REFUNDED)
        reported_at = _bits(rec.meta, REPORTED_AT_OFF, TIME_BITS) if reported else 0
        claims_until = _bits(rec.meta, REPORTED_AT_OFF, TIME_BITS) if skips and not reported else 0
        return TaskInfo(
            task_id=task_id,
            requester=rec.requester,
            program_id=bytes(posted["program_id"]),
            params_digest=bytes(posted["params_digest"]),
            capability=_bits(rec.meta, CAP_OFF, 8),
            committee_size=m,
            quorum=m // 2 + 1,
            reward=rec.reward,
            seat_deadline=seat_dl,
            report_deadline=report_dl,
            status=status,
            seats_taken=len(rec.committee),
            reported_at=reported_at,
            result_digest=rec.result_digest,
            committee=tuple(rec.committee),
            signers_bitmap=_bits(rec.meta, SIGNERS_OFF, 16),
            declined_bitmap=_bits(rec.meta, DECLINED_OFF, 16),
            result=result,
            record=rec,
            dispute=disp,
            rerun_result=rerun_result,
            callback=rec.callback,
            callback_gas=rec.callback_gas,
            callback_ok=callback_ok,
            seed_block=_bits(rec.ext, SEED_BLOCK_OFF, 64),
            refund_reason=refund_reason,
            compute_window=window,
            posted_at=int(posted["posted_at"]),
            slot_snapshot=int(posted["slot_snapshot"]),
            draws=tuple(unpack_draws(rec.draws, len(rec.committee))),
            skips=skips,
            claims_until=claims_until,
            datasets=datasets,
        )

    def task_info(self, task_id: int) -> TaskInfo:
        info = self._rebuild(task_id)
        if info is None:
            z = b"\0" * 32
            return TaskInfo(task_id, "0x" + "00" * 20, z, z, 0, 0, 0, 0, 0, 0,
                            TaskStatus.NONE, 0, 0, z)  # fmt: skip
        return info

    def task_records(self, task_id: int) -> tuple[TaskRecord, DisputeRecord | None]:
        info = self._rebuild(task_id)
        if info is None or info.record is None:
            raise TransactionReverted("task", "market: unknown task")
        return info.record, info.dispute

    def task_record(self, task_id: int) -> TaskRecord:
        return self.task_records(task_id)[0]

    def seats(self, task_id: int) -> list[str]:
        return list(self.task_info(task_id).committee)

    def rerun_seats(self, task_id: int) -> list[str]:
        d = self.task_info(task_id).dispute
        return list(d.committee) if d else []

    def seat_index(self, task_id: int, address: str) -> int | None:
        members = [a.lower() for a in self.seats(task_id)]
        return members.index(address.lower()) if address.lower() in members else None

    def signers_bitmap(self, task_id: int) -> int:
        return self.task_info(task_id).signers_bitmap

    def credits(self, address: str | None = None) -> int:
        addr = to_checksum_address(address or self._require_account("credits").address)
        return int(self._call("credits", addr))

    def result_of(self, task_id: int) -> tuple[TaskStatus, bytes, bytes]:
        """(status, digest, result bytes) of the attested result: the committee's, or the
        re-execution committee's when a dispute overturned it (empty if none yet)."""
        info = self.task_info(task_id)
        if info.status == TaskStatus.OVERTURNED and info.dispute and info.rerun_result:
            return info.status, info.dispute.result_digest, info.rerun_result
        return info.status, info.result_digest, info.result or b""

    def stored_result(self, task_id: int) -> tuple[TaskStatus, bytes, bytes]:
        """The contract's own ``result_of`` view: (status, digest, bytes) for tasks that named
        a callback; empty digest and bytes for the others (read those with ``result_of``)."""
        status, digest, result = self._call("result_of", task_id)
        return TaskStatus(int(status)), bytes(digest), bytes(result)

    def task_count(self) -> int:
        return int(self._call("task_count"))

    def params(self) -> dict[str, int]:
        """The immutable network parameters as deployed."""
        names = (
            "min_stake",
            "seat_collateral",
            "unbond_delay",
            "challenge_period",
            "dispute_bond",
            "dispute_period",
            "min_reward",
            "min_compute_window",
            "claim_period",
        )
        return {n: int(self._call(n)) for n in names}

    def balance_of(self, address: str) -> int:
        """ETH balance of an account (a node pays gas from it)."""
        with rpc_guard(self.w3, "eth_getBalance"):
            return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def balance_of_contract(self) -> int:
        with rpc_guard(self.w3, "eth_getBalance"):
            return int(self.w3.eth.get_balance(self.address))

    def latest_block(self) -> int:
        with rpc_guard(self.w3, "eth_blockNumber"):
            return int(self.w3.eth.block_number)

    def block_timestamp(self, block: int | str = "latest") -> int:
        with rpc_guard(self.w3, "eth_getBlockByNumber"):
            return int(self.w3.eth.get_block(cast(BlockIdentifier, block))["timestamp"])

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on the endpoint's canonical chain (None if absent)."""
        with rpc_guard(self.w3, "eth_getBlockByNumber"):
            try:
                block = self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return _hex32(block.get("hash"))

    def events(self, from_block: int, to_block: int | str = "latest") -> list[ChainEvent]:
        """Decoded contract logs in [from_block, to_block], in chain order."""
        with rpc_guard(self.w3, "eth_getLogs"):
            logs = self.w3.eth.get_logs(
                {
                    "address": self.address,
                    "fromBlock": from_block,
                    "toBlock": cast(BlockIdentifier, to_block),
                }
            )
        return self._decode(logs)

    def _decode(self, logs: Any) -> list[ChainEvent]:
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
                    block_hash=_hex32(log.get("blockHash")),
                )
            )
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out


def _pack_sigs(signatures: Sequence[bytes | None]) -> bytes:
    """Concatenate 65-byte signatures; None (the sender's own seat) becomes 65 zero bytes."""
    out = b""
    for sig in signatures:
        out += bytes(sig) if sig else b"\0" * SIG_LEN
    return out


def _bytes32(value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 32:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return bytes(value)


def _hex32(value: Any) -> str:
    """0x-prefixed lowercase hex of a hash web3 returned (HexBytes, bytes or str)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


try:  # web3 >= 6
    from web3.logs import DISCARD as _DISCARD
except ImportError:  # pragma: no cover
    _DISCARD = None  # type: ignore[assignment]
