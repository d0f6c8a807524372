"""Embedded EVM dev chain (py-evm via eth-tester) behind a standard Ethereum JSON-RPC endpoint.

DEV ONLY. ``dnode chain`` runs this; every other part of dnode reaches the chain only through
JSON-RPC over HTTP (web3's ``HTTPProvider``), exactly as it would a real node.

Design notes
------------
* One :class:`Devnet` owns an ``EthereumTester(PyEVMBackend(...))``. The JSON-RPC methods are
  implemented here directly against the backend's py-evm chain (not through web3's
  ``EthereumTesterProvider`` mapping: that one returns un-encoded Python values, a fixed chain id
  and decoded-only revert reasons, while a real client needs hex-encoded JSON-RPC results and the
  raw revert data).
* Every transaction is mined into its own block immediately (instant mining, no mempool).
  Consequently a nonce that is not exactly the account's next nonce is rejected rather than queued.
* Block timestamps follow the wall clock plus the ``evm_increaseTime`` offset and always
  strictly increase (parent + 1 at least). Instant mining at more than one transaction per
  second therefore runs the chain's clock ahead of the wall clock, and deadlines counted in
  chain time expire early. With ``max_ahead`` (``dnode chain`` sets it) a transaction that
  would put the clock more than that many seconds ahead waits in the pending block, with
  every other one arriving meanwhile, until :meth:`Devnet.tick` mines it (at most a second
  later: the clock is bounded, throughput is not). ``tick`` also mines an empty block each
  second the clock moves, and one every 2 s while the clock is ahead (never past the bound),
  so the clock falls back to the wall clock while blocks keep coming.
* py-evm is not thread-safe: one lock serialises every RPC call.
* The accounts come from the well-known public dev mnemonic (the one anvil and hardhat use), so
  the addresses and keys match those tools. They are public knowledge: never fund them on a real
  network.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from eth_abi import abi
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic
from eth_utils import ValidationError as EthValidationError
from eth_utils import keccak, to_canonical_address, to_checksum_address

from dnode.contracts.errors import DevnetError

log = logging.getLogger("dnode.devnet")

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

#: The public, well-known development mnemonic (same as anvil / hardhat). DEV ONLY.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"  # account i is m/44'/60'/0'/0/i
DEFAULT_ACCOUNTS = 10
DEFAULT_BALANCE_WEI = 10_000 * 10**18
DEFAULT_CHAIN_ID = 1337
AHEAD_BLOCK_EVERY = 2.0  # seconds between empty blocks while the clock is ahead (max_ahead)
DEFAULT_GAS_LIMIT = 30_000_000
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei, what eth_maxPriorityFeePerGas suggests
DEV_ONLY_WARNING = (
    "DEV ONLY — never use these keys on a real network: they are derived from a public "
    "mnemonic and anyone can spend funds sent to them."
)
CLIENT_VERSION = "dnode-devnet/0.1.0/py-evm"
MAX_BODY_BYTES = 32 * 1024 * 1024

ZERO_ADDRESS = b"\x00" * 20
ERROR_STRING_SELECTOR = keccak(text="Error(string)")[:4]  # 0x08c379a0

# JSON-RPC error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth's generic "the node refused this" code
EXECUTION_REVERTED = 3


class RpcError(Exception):
    """A JSON-RPC error object: ``{"code": code, "message": message, "data": data}``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class DevAccount(NamedTuple):
    address: str  # checksummed
    private_key: str  # 0x-prefixed hex
    balance_wei: int


def dev_accounts(
    count: int = DEFAULT_ACCOUNTS,
    balance_wei: int = DEFAULT_BALANCE_WEI,
    mnemonic: str = DEV_MNEMONIC,
) -> list[DevAccount]:
    """The deterministic dev accounts (genesis balance), without starting a chain."""
    keys = get_account_keys_from_mnemonic(mnemonic, quantity=count, hd_path=DEV_HD_PATH)
    return [DevAccount(k.public_key.to_checksum_address(), k.to_hex(), balance_wei) for k in keys]


def dev_keys(count: int = DEFAULT_ACCOUNTS, mnemonic: str = DEV_MNEMONIC) -> list[str]:
    """Private keys (0x hex) of the first ``count`` dev accounts, in account order."""
    return [row.private_key for row in dev_accounts(count, mnemonic=mnemonic)]


# --------------------------------------------------------------------------------------------
# Encoding helpers (JSON-RPC wire format)
# --------------------------------------------------------------------------------------------


def _q(value: int) -> str:
    return hex(value)


def _d(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _h32(value: int | bytes) -> str:
    if isinstance(value, int):
        value = value.to_bytes(32, "big")
    return _d(value.rjust(32, b"\x00"))


def _addr(value: bytes | None) -> str | None:
    if not value:
        return None
    return _d(value)


def _bloom(value: int) -> str:
    return _d(int(value).to_bytes(256, "big"))


def _p_quantity(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise RpcError(INVALID_PARAMS, f"invalid {name}: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise RpcError(INVALID_PARAMS, f"invalid {name}: negative")
        return value
    if isinstance(value, str):
        s = value.strip()
        try:
            if s[:2].lower() == "0x":
                return int(s[2:] or "0", 16)
            return int(s, 10)
        except ValueError:
            pass
    raise RpcError(INVALID_PARAMS, f"invalid {name}: {value!r} (expected a hex quantity)")


def _p_data(value: Any, name: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str) and value[:2].lower() == "0x":
        h = value[2:]
        if len(h) % 2:
            h = "0" + h
        try:
            return bytes.fromhex(h)
        except ValueError:
            pass
    raise RpcError(INVALID_PARAMS, f"invalid {name}: expected 0x-prefixed hex data")


def _p_address(value: Any, name: str = "address") -> bytes:
    try:
        if isinstance(value, str) and len(value) == 42:
            return to_canonical_address(value)
    except (ValueError, TypeError):
        pass
    raise RpcError(INVALID_PARAMS, f"invalid {name}: {value!r}")


def _p_hash(value: Any, name: str = "hash") -> bytes:
    b = _p_data(value, name)
    if len(b) != 32:
        raise RpcError(INVALID_PARAMS, f"invalid {name}: expected 32 bytes")
    return b


def _p_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RpcError(INVALID_PARAMS, f"invalid {name}: expected a boolean")


def _arg(params: list[Any], i: int, default: Any = ..., name: str = "argument") -> Any:
    if i < len(params) and params[i] is not None:
        return params[i]
    if default is ...:
        raise RpcError(INVALID_PARAMS, f"missing value for required argument {i} ({name})")
    return default


def _revert_error(output: bytes) -> RpcError:
    message = "execution reverted"
    if output[:4] == ERROR_STRING_SELECTOR:
        with contextlib.suppress(Exception):
            message += ": " + abi.decode(["string"], output[4:])[0]
    return RpcError(EXECUTION_REVERTED, message, _d(output))


def _tx_type(tx: Any) -> int:
    return int(getattr(tx, "type_id", None) or 0)


def _legacy_chain_id(v: int) -> int | None:
    return (v - 35) // 2 if v >= 35 else None


# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------


class Devnet:
    """An in-process dev chain with JSON-RPC semantics. All public methods are thread-safe."""

    def __init__(
        self,
        accounts: int = DEFAULT_ACCOUNTS,
        chain_id: int = DEFAULT_CHAIN_ID,
        *,
        balance_wei: int = DEFAULT_BALANCE_WEI,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        mnemonic: str = DEV_MNEMONIC,
        max_ahead: float | None = None,
    ) -> None:
        if not isinstance(accounts, int) or accounts < 1:
            raise DevnetError(f"accounts must be a positive integer, got {accounts!r}")
        if not isinstance(chain_id, int) or not 0 < chain_id < 2**63:
            raise DevnetError(f"chain id must be a positive integer, got {chain_id!r}")
        params = PyEVMBackend.generate_genesis_params(
            overrides={"gas_limit": gas_limit, "timestamp": int(time.time())}
        )
        self.backend = PyEVMBackend.from_mnemonic(
            mnemonic,
            genesis_state_overrides={"balance": balance_wei},
            num_accounts=accounts,
            genesis_parameters=params,
            hd_path=DEV_HD_PATH,
        )
        # eth-tester hard-codes chain id 131277322940537 as a class attribute of a chain class it
        # creates per backend; py-evm reads it for the CHAINID opcode and signing. Override it on
        # that (private, per-backend) class so re-created chain instances keep it too.
        type(self.backend.chain).chain_id = chain_id
        self.tester = EthereumTester(self.backend, auto_mine_transactions=True)
        self._chain_id = chain_id
        self._keys = {k.public_key.to_canonical_address(): k for k in self.backend.account_keys}
        self._lock = threading.RLock()
        self._time_offset = 0  # seconds added to the wall clock (evm_increaseTime)
        self._next_ts: int | None = None  # exact timestamp for the next block, if set
        self._max_ahead = max_ahead  # None: mine every transaction at once (see module doc)
        self._ahead_block_at = 0.0  # monotonic time of the last empty block mined while ahead
        self._snapshots: dict[int, tuple[bytes, int, int | None]] = {}
        self._snapshot_counter = 0
        self._filters: dict[int, dict[str, Any]] = {}
        self._filter_counter = 0
        self._logs_cache: dict[bytes, list[dict[str, Any]]] = {}
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }
        self._refresh_pending()

    # ---------------------------------------------------------------- public API
    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in self._keys]

    @property
    def private_keys(self) -> list[str]:
        return [k.to_hex() for k in self._keys.values()]

    def dev_accounts(self) -> list[DevAccount]:
        """(address, private key, current balance) of every dev account."""
        with self._lock:
            state = self._state_at(self._chain.get_canonical_head())
            return [
                DevAccount(to_checksum_address(a), k.to_hex(), state.get_balance(a))
                for a, k in self._keys.items()
            ]

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        """Run one JSON-RPC method; returns the JSON-ready result or raises :class:`RpcError`."""
        fn = self._methods.get(method) if isinstance(method, str) else None
        if fn is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, "params must be an array")
        with self._lock:
            try:
                return fn(params)
            except RpcError:
                raise
            except EthValidationError as exc:
                raise RpcError(SERVER_ERROR, _friendly_validation_message(str(exc))) from None

    def handle_json(self, body: bytes | str) -> bytes | None:
        """Process a JSON-RPC 2.0 HTTP body (single or batch); ``None`` if nothing to answer."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            log.info("rpc: parse error on a %d-byte body", len(body))
            return _dumps(_error_response(None, RpcError(PARSE_ERROR, "parse error")))
        if isinstance(payload, list):
            if not payload:
                return _dumps(_error_response(None, RpcError(INVALID_REQUEST, "empty batch")))
            responses = [r for r in (self._handle_one(item) for item in payload) if r is not None]
            return _dumps(responses) if responses else None
        response = self._handle_one(payload)
        return _dumps(response) if response is not None else None

    # ---------------------------------------------------------------- dispatch
    def _handle_one(self, req: Any) -> dict[str, Any] | None:
        if not isinstance(req, dict) or not isinstance(req.get("method"), str):
            rid = req.get("id") if isinstance(req, dict) else None
            return _error_response(rid, RpcError(INVALID_REQUEST, "invalid request"))
        is_notification = "id" not in req
        rid = req.get("id")
        method = req["method"]
        try:
            result = self.request(method, req.get("params"))
        except RpcError as exc:
            log.info("rpc %s -> error %d: %s", method, exc.code, exc.message)
            return None if is_notification else _error_response(rid, exc)
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback per request
            log.warning("rpc %s -> internal error: %s: %s", method, type(exc).__name__, exc)
            log.debug("rpc %s internal error detail", method, exc_info=True)
            err = RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
            return None if is_notification else _error_response(rid, err)
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ---------------------------------------------------------------- chain internals
    @property
    def _chain(self) -> Any:
        return self.backend.chain

    def _next_timestamp(self) -> int:
        parent = self._chain.get_canonical_head()
        ts = self._next_ts if self._next_ts is not None else int(time.time()) + self._time_offset
        return max(ts, parent.timestamp + 1)

    def _refresh_pending(self) -> None:
        """Give the (empty) pending block the timestamp it will be mined with."""
        chain = self._chain
        ts = self._next_timestamp()
        if chain.header.timestamp != ts and not chain.get_block().transactions:
            chain.header = chain.header.copy(timestamp=ts)

    def _clock(self) -> int:
        """The chain's idea of now: the wall clock plus the ``evm_increaseTime`` offset."""
        return int(time.time()) + self._time_offset

    def _may_mine_now(self) -> bool:
        if self._max_ahead is None or self._next_ts is not None:
            return True
        return bool(self._chain.header.timestamp <= self._clock() + self._max_ahead)

    def tick(self, empty: bool = True) -> bool:
        """Mine the transactions waiting in the pending block once the clock allows, or (with
        ``empty``) an empty block if the clock passed the latest block's timestamp. Call it
        every second or so when ``max_ahead`` is set; True if a block was mined."""
        with self._lock:
            chain = self._chain
            if chain.get_block().transactions:
                if not self._may_mine_now():
                    return False
            else:
                ahead = self._clock() <= chain.get_canonical_head().timestamp
                if not empty or (ahead and not self._ahead_due()):
                    return False
            self._mine()
            return True

    def _ahead_due(self) -> bool:
        """With the clock ahead of the wall clock (a burst of transactions put it there): an
        empty block every ``AHEAD_BLOCK_EVERY`` s all the same, one second later each and never
        past ``max_ahead``. Blocks keep coming (a task waits for its sortition seed block,
        two blocks after its posting: the demo waited 10 s for it) while the clock still falls
        back towards the wall clock, by half a second per second."""
        if self._max_ahead is None or self._next_ts is not None:
            return False
        head = self._chain.get_canonical_head().timestamp
        now = time.monotonic()
        if head + 1 > self._clock() + self._max_ahead:
            return False
        if now - self._ahead_block_at < AHEAD_BLOCK_EVERY:
            return False
        self._ahead_block_at = now
        return True

    def run_miner(self, empty_every: float = 1.0) -> threading.Thread:
        """``tick`` in a daemon thread (``dnode chain``): waiting transactions within a second,
        an empty block every ``empty_every`` seconds (0: never)."""

        def loop() -> None:
            last_empty = time.monotonic()
            while True:
                time.sleep(min(1.0, empty_every) if empty_every else 1.0)
                due = bool(empty_every) and time.monotonic() - last_empty >= empty_every
                try:
                    if self.tick(empty=due) and due:
                        last_empty = time.monotonic()
                except Exception:  # noqa: BLE001 - keep mining; the RPC side reports errors
                    log.exception("devnet miner")

        t = threading.Thread(target=loop, name="devnet-miner", daemon=True)
        t.start()
        return t

    def _mine(self, timestamp: int | None = None) -> bytes:
        chain = self._chain
        if timestamp is not None:
            parent_ts = chain.get_canonical_head().timestamp
            if timestamp <= parent_ts:
                raise RpcError(
                    INVALID_PARAMS,
                    f"timestamp {timestamp} must be greater than the latest block's {parent_ts}",
                )
            self._time_offset = timestamp - int(time.time())
            chain.header = chain.header.copy(timestamp=timestamp)
        elif not chain.get_block().transactions:
            self._refresh_pending()
        self._next_ts = None
        (block_hash,) = self.backend.mine_blocks(1)
        self._refresh_pending()
        return block_hash

    def _state_at(self, header: Any, free: bool = False) -> Any:
        vm = self._chain.get_vm(at_header=header)
        if free and getattr(header, "base_fee_per_gas", None):
            # like geth's eth_call without fee fields: no base fee, so gas price 0 is allowed
            free_header = header.copy(base_fee_per_gas=0)
            return vm.build_state(vm.chaindb.db, free_header, vm.chain_context, vm.previous_hashes)
        return vm.state

    def _resolve(self, tag: Any, *, required: bool = True) -> tuple[Any, bool] | None:
        """Resolve a block tag to ``(header, is_pending)``; ``None`` (or an error) if unknown."""
        chain = self._chain
        head = chain.get_canonical_head()
        if tag is None:
            tag = "latest"
        if isinstance(tag, dict):  # EIP-1898
            if "blockHash" in tag:
                header = self._canonical_header_by_hash(_p_hash(tag["blockHash"], "blockHash"))
                if header is None:
                    if required:
                        raise RpcError(SERVER_ERROR, "header for hash not found")
                    return None
                return header, False
            tag = tag.get("blockNumber", "latest")
        if isinstance(tag, str) and tag in ("latest", "safe", "finalized"):
            return head, False
        if tag == "earliest":
            return chain.get_canonical_block_header_by_number(0), False
        if tag == "pending":
            self._refresh_pending()
            return chain.header, True
        number = _p_quantity(tag, "block number")
        if number > head.block_number:
            if required:
                raise RpcError(SERVER_ERROR, f"header not found (block {number})")
            return None
        return chain.get_canonical_block_header_by_number(number), False

    def _canonical_header_by_hash(self, block_hash: bytes) -> Any | None:
        chain = self._chain
        try:
            header = chain.get_block_header_by_hash(block_hash)
            if header.block_number > chain.get_canonical_head().block_number:
                return None  # evm_revert leaves stale number->hash entries above the head
            canonical = chain.get_canonical_block_header_by_number(header.block_number)
        except Exception:  # noqa: BLE001 - py-evm raises HeaderNotFound and friends
            return None
        return header if canonical.hash == header.hash else None

    def _block(self, header: Any, is_pending: bool) -> Any:
        chain = self._chain
        return chain.get_block() if is_pending else chain.get_block_by_header(header)

    def _find_tx(self, tx_hash: bytes) -> tuple[Any, Any, int] | None:
        chain = self._chain
        try:
            number, index = chain.chaindb.get_transaction_index(tx_hash)
            if number > chain.get_canonical_head().block_number:
                return None  # a block dropped by evm_revert
            block = chain.get_canonical_block_by_number(number)
        except Exception:  # noqa: BLE001 - TransactionNotFound / HeaderNotFound
            return None
        if index >= len(block.transactions) or block.transactions[index].hash != tx_hash:
            return None  # stale index entry (e.g. after evm_revert)
        return block, block.transactions[index], index

    # ---------------------------------------------------------------- serializers
    def _ser_block(self, block: Any, full: bool, is_pending: bool) -> dict[str, Any]:
        h = block.header
        if full:
            txs: list[Any] = [
                self._ser_tx(block, tx, i, is_pending) for i, tx in enumerate(block.transactions)
            ]
        else:
            txs = [_d(tx.hash) for tx in block.transactions]
        out: dict[str, Any] = {
            "number": _q(h.block_number),
            "hash": None if is_pending else _d(h.hash),
            "parentHash": _d(h.parent_hash),
            "nonce": _d(h.nonce),
            "sha3Uncles": _d(h.uncles_hash),
            "logsBloom": _bloom(h.bloom),
            "transactionsRoot": _d(h.transaction_root),
            "stateRoot": _d(h.state_root),
            "receiptsRoot": _d(h.receipt_root),
            "miner": _d(h.coinbase),
            "difficulty": _q(h.difficulty),
            "totalDifficulty": _q(h.difficulty),
            "extraData": _d(h.extra_data),
            "size": _q(len(_rlp_encode(block))),
            "gasLimit": _q(h.gas_limit),
            "gasUsed": _q(h.gas_used),
            "timestamp": _q(h.timestamp),
            "transactions": txs,
            "uncles": [_d(u.hash) for u in block.uncles],
            "mixHash": _d(h.mix_hash),
        }
        if getattr(h, "base_fee_per_gas", None) is not None:
            out["baseFeePerGas"] = _q(h.base_fee_per_gas)
        if getattr(h, "withdrawals_root", None) is not None:
            out["withdrawalsRoot"] = _d(h.withdrawals_root)
            out["withdrawals"] = [
                {
                    "index": _q(w.index),
                    "validatorIndex": _q(w.validator_index),
                    "address": _d(w.address),
                    "amount": _q(w.amount),
                }
                for w in (getattr(block, "withdrawals", None) or ())
            ]
        for attr, key in (("blob_gas_used", "blobGasUsed"), ("excess_blob_gas", "excessBlobGas")):
            if getattr(h, attr, None) is not None:
                out[key] = _q(getattr(h, attr))
        for attr, key in (
            ("parent_beacon_block_root", "parentBeaconBlockRoot"),
            ("requests_hash", "requestsHash"),
        ):
            if getattr(h, attr, None) is not None:
                out[key] = _d(getattr(h, attr))
        return out

    def _ser_tx(self, block: Any, tx: Any, index: int, is_pending: bool) -> dict[str, Any]:
        ttype = _tx_type(tx)
        out: dict[str, Any] = {
            "type": _q(ttype),
            "hash": _d(tx.hash),
            "nonce": _q(tx.nonce),
            "blockHash": None if is_pending else _d(block.hash),
            "blockNumber": None if is_pending else _q(block.number),
            "transactionIndex": None if is_pending else _q(index),
            "from": _d(tx.sender),
            "to": _addr(tx.to),
            "value": _q(tx.value),
            "gas": _q(tx.gas),
            "input": _d(tx.data),
        }
        base_fee = getattr(block.header, "base_fee_per_gas", None) or 0
        if ttype >= 2:
            out["maxFeePerGas"] = _q(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = _q(tx.max_priority_fee_per_gas)
            out["gasPrice"] = _q(
                tx.max_fee_per_gas
                if is_pending
                else min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base_fee)
            )
        else:
            out["gasPrice"] = _q(tx.gas_price)
        if ttype >= 1:
            out["chainId"] = _q(tx.chain_id)
            out["accessList"] = [
                {"address": _d(a), "storageKeys": [_h32(k) for k in keys]}
                for a, keys in (tx.access_list or ())
            ]
            out["v"] = _q(tx.y_parity)
            out["yParity"] = _q(tx.y_parity)
        else:
            out["v"] = _q(tx.v)
            cid = _legacy_chain_id(tx.v)
            if cid is not None:
                out["chainId"] = _q(cid)
        if ttype == 3:
            out["maxFeePerBlobGas"] = _q(tx.max_fee_per_blob_gas)
            out["blobVersionedHashes"] = [_d(x) for x in tx.blob_versioned_hashes]
        if ttype == 4:
            out["authorizationList"] = [
                {
                    "chainId": _q(a.chain_id),
                    "address": _d(a.address),
                    "nonce": _q(a.nonce),
                    "yParity": _q(a.y_parity),
                    "r": _q(a.r),
                    "s": _q(a.s),
                }
                for a in tx.authorization_list
            ]
        out["r"] = _q(tx.r)
        out["s"] = _q(tx.s)
        return out

    def _block_logs(self, block: Any) -> list[dict[str, Any]]:
        """All logs of a canonical block, JSON-encoded (cached by block hash)."""
        cached = self._logs_cache.get(block.hash)
        if cached is not None:
            return cached
        logs: list[dict[str, Any]] = []
        receipts = block.get_receipts(self._chain.chaindb) if block.transactions else ()
        for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            for entry in receipt.logs:
                logs.append(
                    {
                        "address": _d(entry.address),
                        "topics": [_h32(t) for t in entry.topics],
                        "data": _d(entry.data),
                        "blockNumber": _q(block.number),
                        "blockHash": _d(block.hash),
                        "blockTimestamp": _q(block.header.timestamp),
                        "transactionHash": _d(tx.hash),
                        "transactionIndex": _q(tx_index),
                        "logIndex": _q(len(logs)),
                        "removed": False,
                    }
                )
        if len(self._logs_cache) > 4096:
            self._logs_cache.clear()
        self._logs_cache[block.hash] = logs
        return logs

    def _ser_receipt(self, block: Any, tx: Any, index: int) -> dict[str, Any]:
        receipts = block.get_receipts(self._chain.chaindb)
        receipt = receipts[index]
        prev_cumulative = receipts[index - 1].gas_used if index else 0
        ttype = _tx_type(tx)
        base_fee = getattr(block.header, "base_fee_per_gas", None) or 0
        if ttype >= 2:
            price = min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base_fee)
        else:
            price = tx.gas_price
        contract = None
        if not tx.to:
            contract = keccak(_rlp_encode([tx.sender, tx.nonce]))[12:]
        tx_hash = _d(tx.hash)
        logs = [lg for lg in self._block_logs(block) if lg["transactionHash"] == tx_hash]
        return {
            "type": _q(ttype),
            "transactionHash": tx_hash,
            "transactionIndex": _q(index),
            "blockHash": _d(block.hash),
            "blockNumber": _q(block.number),
            "from": _d(tx.sender),
            "to": _addr(tx.to),
            "cumulativeGasUsed": _q(receipt.gas_used),
            "gasUsed": _q(receipt.gas_used - prev_cumulative),
            "effectiveGasPrice": _q(price),
            "contractAddress": _addr(contract),
            "logs": logs,
            "logsBloom": _bloom(receipt.bloom),
            "status": _q(1 if receipt.state_root == b"\x01" else 0),
        }

    # ---------------------------------------------------------------- call / estimate machinery
    def _message(self, txobj: Any, header: Any, *, gas: int | None = None) -> tuple[Any, Any]:
        """Build ``(state, spoofed unsigned tx)`` for eth_call / eth_estimateGas."""
        from eth.vm.spoof import SpoofTransaction

        if not isinstance(txobj, dict):
            raise RpcError(INVALID_PARAMS, "transaction object expected")
        sender = _p_address(txobj["from"], "from") if txobj.get("from") else ZERO_ADDRESS
        to = _p_address(txobj["to"], "to") if txobj.get("to") else b""
        value = _p_quantity(txobj.get("value", 0), "value")
        data = _p_data(txobj.get("input", txobj.get("data")), "input")
        gas_price = txobj.get("gasPrice")
        max_fee = txobj.get("maxFeePerGas")
        max_prio = txobj.get("maxPriorityFeePerGas")
        free = gas_price is None and max_fee is None and max_prio is None
        state = self._state_at(header, free=free)
        if gas is None:
            gas = (
                _p_quantity(txobj["gas"], "gas")
                if txobj.get("gas") is not None
                else header.gas_limit
            )
        builder = self._chain.get_vm(at_header=header).get_transaction_builder()
        nonce = state.get_nonce(sender)
        access_list = _p_access_list(txobj.get("accessList"))
        if free or gas_price is not None:
            price = 0 if free else _p_quantity(gas_price, "gasPrice")
            if not free and txobj.get("gas") is None and price:
                gas = max(21_000, min(gas, (state.get_balance(sender) - value) // price))
            if access_list:
                unsigned = builder.new_unsigned_access_list_transaction(
                    self._chain_id, nonce, price, gas, to, value, data, access_list
                )
            else:
                unsigned = builder.create_unsigned_transaction(
                    nonce=nonce, gas_price=price, gas=gas, to=to, value=value, data=data
                )
        else:
            base_fee = getattr(state.execution_context, "base_fee_per_gas", 0) or 0
            prio = _p_quantity(max_prio, "maxPriorityFeePerGas") if max_prio is not None else 0
            fee = (
                _p_quantity(max_fee, "maxFeePerGas") if max_fee is not None else prio + 2 * base_fee
            )
            if txobj.get("gas") is None and fee:
                gas = max(21_000, min(gas, (state.get_balance(sender) - value) // fee))
            unsigned = builder.new_unsigned_dynamic_fee_transaction(
                self._chain_id, nonce, prio, fee, gas, to, value, data, access_list
            )
        return state, SpoofTransaction(unsigned, from_=sender)

    def _execute(self, txobj: Any, header: Any, *, gas: int | None = None) -> Any:
        state, tx = self._message(txobj, header, gas=gas)
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(tx)
        except EthValidationError as exc:
            raise RpcError(SERVER_ERROR, _friendly_validation_message(str(exc))) from None
        finally:
            state.revert(snapshot)

    # ---------------------------------------------------------------- transactions
    def _submit(self, raw: bytes) -> str:
        chain = self._chain
        try:
            tx = chain.get_vm().get_transaction_builder().decode(raw)
            tx.check_signature_validity()
            sender = tx.sender
        except Exception as exc:  # noqa: BLE001 - rlp / signature errors of many kinds
            raise RpcError(SERVER_ERROR, f"invalid transaction: {exc}") from None
        cid = tx.chain_id if _tx_type(tx) else _legacy_chain_id(tx.v)
        if cid is not None and cid != self._chain_id:
            raise RpcError(
                SERVER_ERROR, f"invalid chain id for signer: have {cid} want {self._chain_id}"
            )
        pending = chain.get_block().transactions
        if self._find_tx(tx.hash) is not None or any(p.hash == tx.hash for p in pending):
            raise RpcError(SERVER_ERROR, "already known")
        self._refresh_pending()
        try:
            chain.apply_transaction(tx)
        except EthValidationError as exc:
            raise RpcError(
                SERVER_ERROR, _friendly_validation_message(str(exc), sender=sender)
            ) from None
        if self._may_mine_now():
            self._mine()  # else it waits in the pending block for the miner's next tick
        return _d(tx.hash)

    # ================================================================ RPC methods
    # web3 / net
    def _m_web3_clientVersion(self, params: list[Any]) -> str:
        return CLIENT_VERSION

    def _m_web3_sha3(self, params: list[Any]) -> str:
        return _d(keccak(_p_data(_arg(params, 0), "data")))

    def _m_net_version(self, params: list[Any]) -> str:
        return str(self._chain_id)

    def _m_net_listening(self, params: list[Any]) -> bool:
        return True

    def _m_net_peerCount(self, params: list[Any]) -> str:
        return "0x0"

    # chain info
    def _m_eth_chainId(self, params: list[Any]) -> str:
        return _q(self._chain_id)

    def _m_eth_syncing(self, params: list[Any]) -> bool:
        return False

    def _m_eth_mining(self, params: list[Any]) -> bool:
        return True

    def _m_eth_coinbase(self, params: list[Any]) -> str:
        return _d(ZERO_ADDRESS)

    def _m_eth_blockNumber(self, params: list[Any]) -> str:
        return _q(self._chain.get_canonical_head().block_number)

    def _m_eth_accounts(self, params: list[Any]) -> list[str]:
        return [_d(a) for a in self._keys]

    # fees
    def _pending_base_fee(self) -> int:
        return getattr(self._chain.header, "base_fee_per_gas", None) or 0

    def _m_eth_gasPrice(self, params: list[Any]) -> str:
        return _q(self._pending_base_fee() + DEFAULT_PRIORITY_FEE)

    def _m_eth_maxPriorityFeePerGas(self, params: list[Any]) -> str:
        return _q(DEFAULT_PRIORITY_FEE)

    def _m_eth_blobBaseFee(self, params: list[Any]) -> str:
        return _q(1)

    def _m_eth_feeHistory(self, params: list[Any]) -> dict[str, Any]:
        count = _p_quantity(_arg(params, 0, name="blockCount"), "blockCount")
        resolved = self._resolve(_arg(params, 1, "latest"), required=True)
        assert resolved is not None
        newest, is_pending = resolved
        percentiles = _arg(params, 2, [])
        if (
            not isinstance(percentiles, list)
            or any(not isinstance(p, int | float) or not 0 <= p <= 100 for p in percentiles)
            or percentiles != sorted(percentiles)
        ):
            raise RpcError(INVALID_PARAMS, "invalid reward percentiles")
        count = max(0, min(count, 1024))
        chain = self._chain
        newest_num = newest.block_number - (1 if is_pending else 0)  # no pending fee data
        oldest = max(0, newest_num - count + 1) if count else newest_num + 1
        base_fees, ratios, rewards = [], [], []
        for n in range(oldest, newest_num + 1):
            block = chain.get_canonical_block_by_number(n)
            h = block.header
            base = getattr(h, "base_fee_per_gas", None) or 0
            base_fees.append(_q(base))
            ratios.append(h.gas_used / h.gas_limit if h.gas_limit else 0.0)
            if percentiles:
                rewards.append([_q(r) for r in _block_rewards(self, block, base, percentiles)])
        if newest_num + 1 <= chain.get_canonical_head().block_number:
            nxt = chain.get_canonical_block_header_by_number(newest_num + 1)
            base_fees.append(_q(getattr(nxt, "base_fee_per_gas", None) or 0))
        else:
            base_fees.append(_q(self._pending_base_fee()))
        out: dict[str, Any] = {
            "oldestBlock": _q(oldest),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
        }
        if percentiles:
            out["reward"] = rewards
        return out

    # state
    def _m_eth_getBalance(self, params: list[Any]) -> str:
        address = _p_address(_arg(params, 0, name="address"))
        header, _ = self._resolve(_arg(params, 1, "latest"))  # type: ignore[misc]
        return _q(self._state_at(header).get_balance(address))

    def _m_eth_getTransactionCount(self, params: list[Any]) -> str:
        address = _p_address(_arg(params, 0, name="address"))
        header, _ = self._resolve(_arg(params, 1, "latest"))  # type: ignore[misc]
        return _q(self._state_at(header).get_nonce(address))

    def _m_eth_getCode(self, params: list[Any]) -> str:
        address = _p_address(_arg(params, 0, name="address"))
        header, _ = self._resolve(_arg(params, 1, "latest"))  # type: ignore[misc]
        return _d(self._state_at(header).get_code(address))

    def _m_eth_getStorageAt(self, params: list[Any]) -> str:
        address = _p_address(_arg(params, 0, name="address"))
        slot = _p_quantity(_arg(params, 1, name="slot"), "slot")
        if slot >= 2**256:
            raise RpcError(INVALID_PARAMS, "invalid slot: larger than 32 bytes")
        header, _ = self._resolve(_arg(params, 2, "latest"))  # type: ignore[misc]
        return _h32(self._state_at(header).get_storage(address, slot))

    # blocks
    def _m_eth_getBlockByNumber(self, params: list[Any]) -> dict[str, Any] | None:
        full = _p_bool(_arg(params, 1, False), "full transactions flag")
        resolved = self._resolve(_arg(params, 0, name="block"), required=False)
        if resolved is None:
            return None
        header, is_pending = resolved
        return self._ser_block(self._block(header, is_pending), full, is_pending)

    def _m_eth_getBlockByHash(self, params: list[Any]) -> dict[str, Any] | None:
        block_hash = _p_hash(_arg(params, 0, name="block hash"), "block hash")
        full = _p_bool(_arg(params, 1, False), "full transactions flag")
        header = self._canonical_header_by_hash(block_hash)
        if header is None:
            return None
        return self._ser_block(self._block(header, False), full, False)

    def _m_eth_getBlockTransactionCountByNumber(self, params: list[Any]) -> str | None:
        resolved = self._resolve(_arg(params, 0, name="block"), required=False)
        if resolved is None:
            return None
        return _q(len(self._block(*resolved).transactions))

    def _m_eth_getBlockTransactionCountByHash(self, params: list[Any]) -> str | None:
        header = self._canonical_header_by_hash(_p_hash(_arg(params, 0, name="block hash")))
        return None if header is None else _q(len(self._block(header, False).transactions))

    def _m_eth_getTransactionByBlockNumberAndIndex(self, params: list[Any]) -> Any:
        resolved = self._resolve(_arg(params, 0, name="block"), required=False)
        index = _p_quantity(_arg(params, 1, name="index"), "index")
        if resolved is None:
            return None
        block = self._block(*resolved)
        if index >= len(block.transactions):
            return None
        return self._ser_tx(block, block.transactions[index], index, resolved[1])

    def _m_eth_getTransactionByBlockHashAndIndex(self, params: list[Any]) -> Any:
        header = self._canonical_header_by_hash(_p_hash(_arg(params, 0, name="block hash")))
        index = _p_quantity(_arg(params, 1, name="index"), "index")
        if header is None:
            return None
        block = self._block(header, False)
        if index >= len(block.transactions):
            return None
        return self._ser_tx(block, block.transactions[index], index, False)

    # transactions
    def _m_eth_getTransactionByHash(self, params: list[Any]) -> dict[str, Any] | None:
        tx_hash = _p_hash(_arg(params, 0, name="transaction hash"))
        found = self._find_tx(tx_hash)
        if found is None:  # waiting in the pending block (max_ahead): known, not yet mined
            pending = self._chain.get_block()
            for i, tx in enumerate(pending.transactions):
                if tx.hash == tx_hash:
                    return self._ser_tx(pending, tx, i, True)
            return None
        block, tx, index = found
        return self._ser_tx(block, tx, index, False)

    def _m_eth_getTransactionReceipt(self, params: list[Any]) -> dict[str, Any] | None:
        found = self._find_tx(_p_hash(_arg(params, 0, name="transaction hash")))
        if found is None:
            return None
        return self._ser_receipt(*found)

    def _m_eth_sendRawTransaction(self, params: list[Any]) -> str:
        return self._submit(_p_data(_arg(params, 0, name="raw transaction"), "raw transaction"))

    def _m_eth_sendTransaction(self, params: list[Any]) -> str:
        txobj = _arg(params, 0, name="transaction")
        if not isinstance(txobj, dict) or not txobj.get("from"):
            raise RpcError(INVALID_PARAMS, "transaction object with a 'from' field expected")
        sender = _p_address(txobj["from"], "from")
        key = self._keys.get(sender)
        if key is None:
            raise RpcError(SERVER_ERROR, f"unknown account {_d(sender)} (not a dev account)")
        tx: dict[str, Any] = {
            "chainId": self._chain_id,
            "nonce": _p_quantity(txobj["nonce"], "nonce")
            if txobj.get("nonce") is not None
            else self._state_at(self._chain.get_canonical_head()).get_nonce(sender),
            "value": _p_quantity(txobj.get("value", 0), "value"),
            "data": _d(_p_data(txobj.get("input", txobj.get("data")), "input")),
        }
        if txobj.get("to"):
            tx["to"] = to_checksum_address(_p_address(txobj["to"], "to"))
        if txobj.get("gasPrice") is not None:
            tx["gasPrice"] = _p_quantity(txobj["gasPrice"], "gasPrice")
        else:
            prio = _p_quantity(txobj.get("maxPriorityFeePerGas", DEFAULT_PRIORITY_FEE), "fee")
            tx["maxPriorityFeePerGas"] = prio
            tx["maxFeePerGas"] = (
                _p_quantity(txobj["maxFeePerGas"], "maxFeePerGas")
                if txobj.get("maxFeePerGas") is not None
                else prio + 2 * self._pending_base_fee()
            )
            tx["type"] = 2
        if txobj.get("accessList"):
            tx["accessList"] = txobj["accessList"]
        if txobj.get("gas") is not None:
            tx["gas"] = _p_quantity(txobj["gas"], "gas")
        else:
            estimate_obj = {k: v for k, v in txobj.items() if k != "gas"}
            tx["gas"] = int(self._m_eth_estimateGas([estimate_obj, "pending"]), 16)
        signed = Account.sign_transaction(tx, key.to_bytes())
        return self._submit(bytes(signed.raw_transaction))

    def _m_eth_call(self, params: list[Any]) -> str:
        txobj = _arg(params, 0, name="transaction")
        if len(params) > 2 and params[2]:
            raise RpcError(INVALID_PARAMS, "state overrides are not supported by the dev chain")
        header, _ = self._resolve(_arg(params, 1, "latest"))  # type: ignore[misc]
        computation = self._execute(txobj, header)
        if computation.is_error:
            raise _computation_error(computation)
        return _d(computation.output)

    def _m_eth_estimateGas(self, params: list[Any]) -> str:
        txobj = _arg(params, 0, name="transaction")
        header, _ = self._resolve(_arg(params, 1, "latest"))  # type: ignore[misc]
        state, probe = self._message(txobj, header)
        cap = probe.gas
        computation = self._execute(txobj, header, gas=cap)
        if computation.is_error:
            err = _computation_error(computation)
            if err.code != EXECUTION_REVERTED and _is_out_of_gas(computation):
                raise RpcError(SERVER_ERROR, f"gas required exceeds allowance ({cap})")
            raise err
        used = cap - computation.get_gas_remaining()
        if used < cap and not self._execute(txobj, header, gas=used).is_error:
            return _q(used)  # the common case: no 63/64 or refund effects
        lo, hi = 20_999, cap
        optimistic = min(cap, (used + computation.get_gas_refund() + 2_300) * 64 // 63)
        if optimistic < hi:
            if not self._execute(txobj, header, gas=optimistic).is_error:
                hi = optimistic
            else:
                lo = optimistic
        lo = max(lo, used - 1)
        while hi - lo > 1:  # exact: ~log2(optimistic - used) extra runs
            mid = (hi + lo) // 2
            try:
                failed = self._execute(txobj, header, gas=mid).is_error
            except RpcError:  # e.g. intrinsic gas too low
                failed = True
            if failed:
                lo = mid
            else:
                hi = mid
        return _q(hi)

    # logs and filters
    def _log_range(
        self, criteria: dict[str, Any]
    ) -> tuple[int, int, Callable[[dict[str, Any]], bool], bytes | None]:
        if not isinstance(criteria, dict):
            raise RpcError(INVALID_PARAMS, "filter object expected")
        head = self._chain.get_canonical_head().block_number
        block_hash = None
        if criteria.get("blockHash") is not None:
            if criteria.get("fromBlock") is not None or criteria.get("toBlock") is not None:
                raise RpcError(
                    INVALID_PARAMS, "cannot specify both blockHash and fromBlock/toBlock"
                )
            block_hash = _p_hash(criteria["blockHash"], "blockHash")
            start = end = -1
        else:
            start = self._tag_to_number(criteria.get("fromBlock"), head)
            end = self._tag_to_number(criteria.get("toBlock"), head)
            if start > end and not (start > head):
                raise RpcError(INVALID_PARAMS, "invalid block range params (fromBlock > toBlock)")
        addresses = criteria.get("address")
        if addresses is None or addresses == []:
            addr_set = None
        else:
            if not isinstance(addresses, list):
                addresses = [addresses]
            addr_set = {_d(_p_address(a)) for a in addresses}
        topics = criteria.get("topics") or []
        if not isinstance(topics, list) or len(topics) > 4:
            raise RpcError(INVALID_PARAMS, "topics must be an array of at most 4 entries")
        wanted: list[set[str] | None] = []
        for t in topics:
            if t is None:
                wanted.append(None)
            elif isinstance(t, list):
                if not t or any(x is None for x in t):
                    wanted.append(None)
                else:
                    wanted.append({_d(_p_hash(x, "topic")) for x in t})
            else:
                wanted.append({_d(_p_hash(t, "topic"))})

        def match(entry: dict[str, Any]) -> bool:
            if addr_set is not None and entry["address"] not in addr_set:
                return False
            if len(wanted) > len(entry["topics"]):
                return False
            return all(w is None or entry["topics"][i] in w for i, w in enumerate(wanted))

        return start, end, match, block_hash

    def _tag_to_number(self, tag: Any, head: int) -> int:
        if tag is None or tag in ("latest", "pending", "safe", "finalized"):
            return head
        if tag == "earliest":
            return 0
        return _p_quantity(tag, "block number")

    def _collect_logs(self, criteria: dict[str, Any], start: int | None = None) -> list[Any]:
        lo, hi, match, block_hash = self._log_range(criteria)
        chain = self._chain
        if block_hash is not None:
            header = self._canonical_header_by_hash(block_hash)
            if header is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            return [e for e in self._block_logs(chain.get_block_by_header(header)) if match(e)]
        head = chain.get_canonical_head().block_number
        if start is not None:
            # a filter's changes: every block since the last poll ("latest" or no fromBlock
            # meant the head when the filter was installed, as in geth), never only the head
            lo = start if _is_head_tag(criteria.get("fromBlock")) else max(lo, start)
        hi = min(hi, head)
        out: list[dict[str, Any]] = []
        for n in range(lo, hi + 1):
            block = chain.get_canonical_block_by_number(n)
            if block.transactions:
                out.extend(e for e in self._block_logs(block) if match(e))
        return out

    def _m_eth_getLogs(self, params: list[Any]) -> list[dict[str, Any]]:
        return self._collect_logs(_arg(params, 0, {}, name="filter"))

    def _new_filter(self, kind: str, criteria: dict[str, Any] | None) -> str:
        head = self._chain.get_canonical_head().block_number
        self._filter_counter += 1
        self._filters[self._filter_counter] = {"kind": kind, "criteria": criteria, "last": head}
        return _q(self._filter_counter)

    def _m_eth_newFilter(self, params: list[Any]) -> str:
        criteria = _arg(params, 0, {}, name="filter")
        self._log_range(criteria)  # validate now
        if criteria.get("blockHash") is not None:
            raise RpcError(INVALID_PARAMS, "blockHash is not allowed in eth_newFilter")
        fid = self._new_filter("log", criteria)
        # like geth: eth_getFilterChanges reports logs of blocks mined after installation;
        # eth_getFilterLogs returns everything matching the range
        return fid

    def _m_eth_newBlockFilter(self, params: list[Any]) -> str:
        return self._new_filter("block", None)

    def _filter(self, params: list[Any]) -> dict[str, Any]:
        fid = _p_quantity(_arg(params, 0, name="filter id"), "filter id")
        flt = self._filters.get(fid)
        if flt is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        return flt

    def _m_eth_getFilterChanges(self, params: list[Any]) -> list[Any]:
        flt = self._filter(params)
        head = self._chain.get_canonical_head().block_number
        last = min(flt["last"], head)
        flt["last"] = head
        if flt["kind"] == "block":
            chain = self._chain
            return [
                _d(chain.get_canonical_block_header_by_number(n).hash)
                for n in range(last + 1, head + 1)
            ]
        return self._collect_logs(flt["criteria"], start=last + 1)

    def _m_eth_getFilterLogs(self, params: list[Any]) -> list[Any]:
        flt = self._filter(params)
        if flt["kind"] != "log":
            raise RpcError(SERVER_ERROR, "filter not found")
        return self._collect_logs(flt["criteria"])

    def _m_eth_uninstallFilter(self, params: list[Any]) -> bool:
        fid = _p_quantity(_arg(params, 0, name="filter id"), "filter id")
        return self._filters.pop(fid, None) is not None

    # dev / test methods (ganache, hardhat and anvil compatible)
    def _m_evm_increaseTime(self, params: list[Any]) -> str:
        seconds = _p_quantity(_arg(params, 0, name="seconds"), "seconds")
        self._time_offset += seconds
        if self._next_ts is not None:
            self._next_ts += seconds
        self._refresh_pending()
        return _q(self._time_offset)

    def _m_evm_setNextBlockTimestamp(self, params: list[Any]) -> None:
        ts = _p_quantity(_arg(params, 0, name="timestamp"), "timestamp")
        parent_ts = self._chain.get_canonical_head().timestamp
        if ts <= parent_ts:
            raise RpcError(
                INVALID_PARAMS,
                f"timestamp {ts} must be greater than the latest block's {parent_ts}",
            )
        self._time_offset = ts - int(time.time())
        self._next_ts = ts
        self._refresh_pending()
        return None

    def _m_evm_mine(self, params: list[Any]) -> str:
        arg = _arg(params, 0, None)
        blocks, ts = 1, None
        if isinstance(arg, dict):
            if arg.get("timestamp") is not None:
                ts = _p_quantity(arg["timestamp"], "timestamp")
            blocks = _p_quantity(arg.get("blocks", 1), "blocks")
        elif arg is not None:
            ts = _p_quantity(arg, "timestamp")
        for i in range(max(1, blocks)):
            self._mine(ts if i == 0 else None)
        return "0x0"

    def _m_anvil_mine(self, params: list[Any]) -> None:
        blocks = _p_quantity(_arg(params, 0, 1), "blocks")
        interval = _p_quantity(_arg(params, 1, 0), "interval")
        for _ in range(max(1, blocks)):
            if interval:
                self._time_offset += interval
            self._mine()
        return None

    def _m_evm_snapshot(self, params: list[Any]) -> str:
        self._snapshot_counter += 1
        head = self._chain.get_canonical_head()
        self._snapshots[self._snapshot_counter] = (head.hash, self._time_offset, self._next_ts)
        return _q(self._snapshot_counter)

    def _m_evm_revert(self, params: list[Any]) -> bool:
        from eth.constants import GENESIS_PARENT_HASH

        sid = _p_quantity(_arg(params, 0, name="snapshot id"), "snapshot id")
        snap = self._snapshots.get(sid)
        if snap is None:
            return False
        block_hash, offset, next_ts = snap
        # snapshots are single-use: this one and every later one are gone (ganache/hardhat rule)
        for k in [k for k in self._snapshots if k >= sid]:
            del self._snapshots[k]
        chain = self._chain
        header = chain.get_block_header_by_hash(block_hash)
        chain.chaindb._set_as_canonical_chain_head(chain.chaindb.db, header, GENESIS_PARENT_HASH)
        chain.header = chain.create_header_from_parent(header)
        self._time_offset, self._next_ts = offset, next_ts
        self._refresh_pending()
        return True

    def _set_state(self, mutate: Callable[[Any], None]) -> None:
        """Apply a direct state change (cheat code) and mine it into a block."""
        chain = self._chain
        self._refresh_pending()
        vm = chain.get_vm(chain.header)
        state = vm.state
        mutate(state)
        state.persist()
        chain.header = chain.header.copy(state_root=state.state_root)
        self._mine()

    def _m_anvil_setBalance(self, params: list[Any]) -> bool:
        address = _p_address(_arg(params, 0, name="address"))
        balance = _p_quantity(_arg(params, 1, name="balance"), "balance")
        self._set_state(lambda s: s.set_balance(address, balance))
        return True

    def _m_anvil_setCode(self, params: list[Any]) -> bool:
        address = _p_address(_arg(params, 0, name="address"))
        code = _p_data(_arg(params, 1, name="code"), "code")
        self._set_state(lambda s: s.set_code(address, code))
        return True

    def _m_anvil_setNonce(self, params: list[Any]) -> bool:
        address = _p_address(_arg(params, 0, name="address"))
        nonce = _p_quantity(_arg(params, 1, name="nonce"), "nonce")
        self._set_state(lambda s: s.set_nonce(address, nonce))
        return True

    def _m_anvil_setStorageAt(self, params: list[Any]) -> bool:
        address = _p_address(_arg(params, 0, name="address"))
        slot = _p_quantity(_arg(params, 1, name="slot"), "slot")
        value = int.from_bytes(_p_data(_arg(params, 2, name="value"), "value"), "big")
        self._set_state(lambda s: s.set_storage(address, slot, value))
        return True

    # hardhat spells the same cheat codes differently
    _m_hardhat_setBalance = _m_anvil_setBalance
    _m_hardhat_setCode = _m_anvil_setCode
    _m_hardhat_setNonce = _m_anvil_setNonce
    _m_hardhat_setStorageAt = _m_anvil_setStorageAt
    _m_hardhat_mine = _m_anvil_mine


# --------------------------------------------------------------------------------------------
# Helpers that need py-evm types
# --------------------------------------------------------------------------------------------


def _rlp_encode(obj: Any) -> bytes:
    import rlp

    return rlp.encode(obj)


def _p_access_list(value: Any) -> tuple[tuple[bytes, tuple[int, ...]], ...]:
    if not value:
        return ()
    if not isinstance(value, list):
        raise RpcError(INVALID_PARAMS, "invalid accessList")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise RpcError(INVALID_PARAMS, "invalid accessList entry")
        keys = tuple(
            int.from_bytes(_p_hash(k, "storage key"), "big") for k in item.get("storageKeys") or ()
        )
        out.append((_p_address(item.get("address"), "accessList address"), keys))
    return tuple(out)


def _is_out_of_gas(computation: Any) -> bool:
    from eth.exceptions import OutOfGas

    return isinstance(computation.error, OutOfGas)


def _computation_error(computation: Any) -> RpcError:
    from eth.exceptions import Revert

    error = computation.error
    if isinstance(error, Revert):
        data = computation.output or (error.args[0] if error.args else b"")
        return _revert_error(bytes(data) if isinstance(data, bytes | bytearray) else b"")
    text = str(error) or type(error).__name__
    if _is_out_of_gas(computation):
        text = "out of gas"
    return RpcError(SERVER_ERROR, f"execution failed: {text}")


def _friendly_validation_message(text: str, sender: bytes | None = None) -> str:
    """Prefix py-evm's validation messages with the phrase geth uses, keep the detail."""
    lower = text.lower()
    if "nonce" in lower:
        import re

        m = re.search(r"expected (\d+), but got (\d+)", lower)
        if m:
            want, got = int(m.group(1)), int(m.group(2))
            phrase = "nonce too low" if got < want else "nonce too high"
            return f"{phrase}: next nonce {want}, tx nonce {got} (no mempool: txs mine instantly)"
        return f"invalid nonce: {text}"
    if "balance" in lower or "afford" in lower:
        return f"insufficient funds for gas * price + value: {text}"
    if "base fee" in lower:
        return f"max fee per gas less than block base fee: {text}"
    if "intrinsic" in lower:
        return f"intrinsic gas too low: {text}"
    if "gas limit" in lower or "block gas" in lower:
        return f"exceeds block gas limit: {text}"
    return text


def _block_rewards(devnet: Devnet, block: Any, base_fee: int, percentiles: list[Any]) -> list[int]:
    """geth-style effective-tip percentiles for eth_feeHistory, weighted by gas used."""
    if not block.transactions:
        return [0] * len(percentiles)
    receipts = block.get_receipts(devnet._chain.chaindb)
    items = []
    prev = 0
    for tx, receipt in zip(block.transactions, receipts, strict=True):
        used, prev = receipt.gas_used - prev, receipt.gas_used
        if _tx_type(tx) >= 2:
            tip = min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)
        else:
            tip = tx.gas_price - base_fee
        items.append((max(tip, 0), used))
    items.sort()
    total = sum(u for _, u in items) or 1
    out = []
    for p in percentiles:
        threshold = total * p / 100
        acc, chosen = 0, items[-1][0]
        for tip, used in items:
            acc += used
            if acc >= threshold:
                chosen = tip
                break
        out.append(chosen)
    return out


def _error_response(rid: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": err.to_json()}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: DevnetServer
    protocol_version = "HTTP/1.1"  # keep-alive, as web3's requests session expects

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):  # small replies: don't wait for delayed ACKs
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server._track(self.connection, add=False)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_OPTIONS(self) -> None:  # noqa: N802 - CORS preflight for browser dev tools
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
        self.send_header("Access-Control-Max-Age", "86400")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self._send(405, b"dnode devnet: send JSON-RPC requests with POST\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, _dumps(_error_response(None, RpcError(INVALID_REQUEST, "bad body"))))
            return
        body = self.rfile.read(length)
        response = self.server.devnet.handle_json(body)
        self._send(200, response or b"")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("http %s - " + format, self.address_string(), *args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        log.info("http %s - " + format, self.address_string(), *args)


class DevnetServer(ThreadingHTTPServer):
    """The JSON-RPC HTTP server; ``devnet`` is the chain it serves."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, devnet: Devnet, host: str = "127.0.0.1", port: int = 8545) -> None:
        self.devnet = devnet
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._serving = threading.Event()
        self._closed = False
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise DevnetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        self._serving.set()
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        log.warning("http %s: %s: %s", client_address, type(exc).__name__, exc)

    def shutdown(self) -> None:
        """Stop serving, drop open keep-alive connections and close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._serving.is_set():
            super().shutdown()
        with self._conn_lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server_close()


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    accounts: int = DEFAULT_ACCOUNTS,
    chain_id: int = DEFAULT_CHAIN_ID,
    *,
    devnet: Devnet | None = None,
) -> tuple[DevnetServer, str]:
    """Serve a (new or given) :class:`Devnet` from a daemon thread; port 0 picks a free port.

    Returns ``(server, url)``; stop it with ``server.shutdown()``.
    """
    if devnet is None:
        devnet = Devnet(accounts=accounts, chain_id=chain_id)
    server = DevnetServer(devnet, host, port)
    thread = threading.Thread(target=server.serve_forever, name="dnode-devnet", daemon=True)
    thread.start()
    server._serving.wait(5)
    return server, server.url


def serve(
    host: str = "127.0.0.1",
    port: int = 8545,
    accounts: int = DEFAULT_ACCOUNTS,
    chain_id: int = DEFAULT_CHAIN_ID,
    ready: threading.Event | None = None,
    *,
    devnet: Devnet | None = None,
) -> None:
    """Run the dev chain JSON-RPC server until interrupted (Ctrl-C) or ``shutdown()``.

    ``ready`` is set once the socket is listening. Raises :class:`DevnetError` if the address
    cannot be bound.
    """
    if devnet is None:
        devnet = Devnet(accounts=accounts, chain_id=chain_id)
    server = DevnetServer(devnet, host, port)
    log.info("dev chain (chain id %d) listening on %s", devnet.chain_id, server.url)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._closed = True
        with server._conn_lock:
            conns = list(server._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()


def print_accounts(devnet: Devnet | None = None, count: int = DEFAULT_ACCOUNTS) -> list[DevAccount]:
    """Rows for the CLI: ``(address, private key, balance in wei)`` of every dev account.

    Show them under :data:`DEV_ONLY_WARNING`. Uses the live balances when ``devnet`` is given.
    """
    return devnet.dev_accounts() if devnet is not None else dev_accounts(count)


__all__ = [
    "DEV_MNEMONIC",
    "DEV_ONLY_WARNING",
    "DevAccount",
    "Devnet",
    "DevnetServer",
    "RpcError",
    "dev_accounts",
    "dev_keys",
    "print_accounts",
    "serve",
    "start_in_thread",
]


def _is_head_tag(tag: Any) -> bool:
    """A block tag that moves with the chain (a filter without fromBlock, or "latest")."""
    return tag is None or tag in ("latest", "pending", "safe", "finalized")
