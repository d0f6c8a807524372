"""Crash-safe transaction outbox and gapless nonce manager (SQLite, stdlib only).

Why: a node that is killed between signing and broadcasting (or between broadcasting and
seeing the receipt) must neither lose the transaction nor leave a nonce hole that blocks every
later transaction of its account. As Chainlink nodes do, every transaction is:

1. estimated first: a deterministic revert (eth_estimateGas) raises TransactionReverted and
   is never recorded nor retried;
2. given the next nonce from the database (max of the outbox's next nonce and the chain's
   pending count, so a key also used by a wallet is tolerated), signed, and committed to the
   ``outbox``/``tx_attempts`` tables (raw signed bytes, nonce, hash) BEFORE it is broadcast;
3. broadcast; "already known" and "nonce too low" mean "possibly sent": the receipt decides;
   "underpriced"/"fee too low" re-signs the same nonce with higher fees;
4. settled: a receipt of any attempt (any fee level) closes it; a transaction still not mined
   after ``stuck_after`` seconds is re-signed with the same nonce and fees raised by at least
   12.5% (geth and anvil require +10% to replace), up to the current market fee.

``recover()`` re-drives every pending row after a restart: a mined one is closed, an
unbroadcast or dropped one is re-broadcast (or replaced), so nonces stay gapless.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import TxParams

from dnode.contracts.client import (
    _nonce_lock,
    fee_fields,
    prepare_transaction,
    replay_reason,
    rpc_guard,
)
from dnode.contracts.errors import (
    ContractsError,
    NonceConsumed,
    OutboxError,
    RpcUnreachable,
    TransactionReverted,
    TxPending,
)

BUMP_NUM, BUMP_DEN = 1125, 1000  # +12.5%: above geth's and anvil's 10% replacement floor
FEE_KEYS = ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice")
MAX_ATTEMPTS = 12  # fee levels per nonce before the outbox stops bumping on its own

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    action TEXT NOT NULL,
    to_addr TEXT,
    tx TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    mined_hash TEXT,
    block INTEGER,
    created REAL NOT NULL,
    UNIQUE (sender, nonce)
);
CREATE TABLE IF NOT EXISTS tx_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox (id),
    tx_hash TEXT NOT NULL UNIQUE,
    raw BLOB NOT NULL,
    fees TEXT NOT NULL,
    created REAL NOT NULL,
    broadcast_at REAL
);
"""

KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")
NONCE_LOW = ("nonce too low", "nonce is too low", "oldnonce")
NONCE_HIGH = ("nonce too high", "gapped", "future transaction")
UNDERPRICED = (
    "underpriced",
    "fee too low",
    "less than block base fee",
    "max fee per gas less than",
    "gas price too low",
    "feecap",
)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    sender: str
    nonce: int
    action: str
    state: str  # pending | mined | reverted | lost
    tx_hashes: tuple[str, ...]
    mined_hash: str | None


@dataclass(frozen=True)
class _Attempt:
    id: int
    tx_hash: str
    raw: bytes
    fees: dict[str, int]
    created: float
    broadcast_at: float | None


def bump_fees(old: dict[str, int], market: dict[str, int]) -> dict[str, int]:
    """Replacement fees for the same nonce: each field up >= 12.5%, and at least the market's."""

    def up(x: int) -> int:
        return -(-x * BUMP_NUM // BUMP_DEN) + 1

    if "maxFeePerGas" in old:
        prio = max(up(old["maxPriorityFeePerGas"]), market.get("maxPriorityFeePerGas", 0))
        cap = max(up(old["maxFeePerGas"]), market.get("maxFeePerGas", 0), prio)
        return {"maxFeePerGas": cap, "maxPriorityFeePerGas": prio}
    return {"gasPrice": max(up(old["gasPrice"]), market.get("gasPrice", 0))}


def _message(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    if isinstance(msg, str) and msg:
        return msg.lower()
    if exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("message", exc.args[0])).lower()
    return str(exc).lower()


def _hex(h: Any) -> str:
    return "0x" + bytes(h).hex().removeprefix("0x") if not isinstance(h, str) else h.lower()


def connect_db(path: Path) -> sqlite3.Connection:
    """A connection with the durability settings every writer of a node's state file uses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so checks and writes are atomic
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=30000")
    return db


@contextlib.contextmanager
def write_txn(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """One durable write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on error."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class TxOutbox:
    """One account's (or several accounts') outbox in a SQLite file; thread-safe."""

    def __init__(
        self, path: Path, *, stuck_after: float = 30.0, poll_interval: float = 0.25
    ) -> None:
        self.path = path
        self.stuck_after = stuck_after
        self.poll_interval = poll_interval
        self._mu = threading.Lock()
        self.db = connect_db(path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._mu:
            self.db.close()

    # ---- database -------------------------------------------------------------------------

    def _txn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_txn(self.db, self._mu)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._mu:
            return list(self.db.execute(sql, args).fetchall())

    def rows(self, sender: str | None = None) -> list[OutboxRow]:
        where, args = ("WHERE sender = ?", (sender.lower(),)) if sender else ("", ())
        out = []
        for rid, snd, nonce, action, state, mined in self._read(
            f"SELECT id, sender, nonce, action, state, mined_hash FROM outbox {where} "
            "ORDER BY sender, nonce",
            args,
        ):
            hashes = tuple(a.tx_hash for a in self._attempts(rid))
            out.append(OutboxRow(rid, snd, nonce, action, state, hashes, mined))
        return out

    def row(self, outbox_id: int) -> OutboxRow:
        for r in self._read("SELECT sender FROM outbox WHERE id = ?", (outbox_id,)):
            for row in self.rows(r[0]):
                if row.id == outbox_id:
                    return row
        raise OutboxError(f"outbox has no transaction #{outbox_id}")

    def _attempts(self, outbox_id: int) -> list[_Attempt]:
        return [
            _Attempt(i, h, bytes(raw), json.loads(fees), c, b)
            for i, h, raw, fees, c, b in self._read(
                "SELECT id, tx_hash, raw, fees, created, broadcast_at FROM tx_attempts "
                "WHERE outbox_id = ? ORDER BY id",
                (outbox_id,),
            )
        ]

    def _unsigned(self, outbox_id: int) -> tuple[dict[str, Any], str, int]:
        """(tx fields without fees, action, nonce) as first recorded: replacements only
        change the fees."""
        rows = self._read("SELECT tx, action, nonce FROM outbox WHERE id = ?", (outbox_id,))
        if not rows:
            raise OutboxError(f"outbox has no transaction #{outbox_id}")
        tx, action, nonce = rows[0]
        fields = json.loads(tx)
        fields["value"] = int(fields["value"])
        return fields, str(action), int(nonce)

    # ---- recording ------------------------------------------------------------------------

    def record(
        self,
        w3: Web3,
        account: LocalAccount,
        action: str,
        *,
        to: str | None,
        data: bytes | str,
        value: int = 0,
    ) -> int:
        """Estimate, assign the next nonce, sign, and commit; NOT broadcast. Returns the row id.

        Raises TransactionReverted (deterministic: never recorded), InsufficientFunds."""
        _, unsigned = prepare_transaction(w3, account, action, to=to, data=data, value=value)
        with _nonce_lock(account.address):
            return self._record_locked(w3, account, action, unsigned, data, value, to)

    def _record_locked(
        self,
        w3: Web3,
        account: LocalAccount,
        action: str,
        unsigned: dict[str, Any],
        data: bytes | str,
        value: int,
        to: str | None,
    ) -> int:
        """Assign the nonce, sign and commit; the caller holds ``_nonce_lock(sender)``."""
        sender = account.address.lower()
        with rpc_guard(w3, action):
            chain_next = int(w3.eth.get_transaction_count(account.address, "pending"))
        with self._txn() as db:
            top = db.execute(
                "SELECT MAX(nonce) FROM outbox WHERE sender = ?", (sender,)
            ).fetchone()[0]
            nonce = max(chain_next, 0 if top is None else int(top) + 1)
            tx = {**unsigned, "nonce": nonce}
            signed = account.sign_transaction(cast(dict[str, Any], tx))
            fields = {k: v for k, v in tx.items() if k not in FEE_KEYS and k != "from"}
            fields["data"] = data if isinstance(data, str) else "0x" + bytes(data).hex()
            fields["value"] = str(value)
            cur = db.execute(
                "INSERT INTO outbox (sender, nonce, action, to_addr, tx, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (sender, nonce, action, to, json.dumps(fields), time.time()),
            )
            rid = int(cast(int, cur.lastrowid))
            self._insert_attempt(db, rid, signed, unsigned)
        return rid

    def _insert_attempt(self, db: sqlite3.Connection, rid: int, signed: Any, tx: Any) -> None:
        fees = {k: int(tx[k]) for k in FEE_KEYS if k in tx}
        db.execute(
            "INSERT INTO tx_attempts (outbox_id, tx_hash, raw, fees, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (rid, _hex(signed.hash), bytes(signed.raw_transaction), json.dumps(fees), time.time()),
        )

    def _replace(self, w3: Web3, account: LocalAccount, rid: int) -> _Attempt:
        """Re-sign the row's transaction, same nonce, higher fees; committed before broadcast."""
        tx, action, _ = self._unsigned(rid)
        last = self._attempts(rid)[-1]
        with rpc_guard(w3, action):
            market = fee_fields(w3)
        new = {**tx, **bump_fees(last.fees, market)}
        signed = account.sign_transaction(cast(dict[str, Any], new))
        with self._txn() as db:
            self._insert_attempt(db, rid, signed, new)
        return self._attempts(rid)[-1]

    # ---- broadcasting and settling --------------------------------------------------------

    def _broadcast(self, w3: Web3, account: LocalAccount, rid: int) -> None:
        """Send the newest attempt; raise only for what a retry cannot fix by itself."""
        for _ in range(MAX_ATTEMPTS):
            att = self._attempts(rid)[-1]
            try:
                with rpc_guard(w3, "eth_sendRawTransaction"):
                    w3.eth.send_raw_transaction(att.raw)
            except RpcUnreachable:
                raise
            except Exception as exc:  # noqa: BLE001 - classified by the node's message
                msg = _message(exc)
                if any(k in msg for k in KNOWN) or any(k in msg for k in NONCE_LOW):
                    pass  # possibly sent: the receipt (or the chain nonce) decides in _settle
                elif any(k in msg for k in NONCE_HIGH):
                    return  # an earlier nonce is not in the pool yet: _settle sends it again
                elif any(k in msg for k in UNDERPRICED):
                    self._replace(w3, account, rid)
                    continue
                else:
                    raise OutboxError(f"broadcast of {att.tx_hash} failed: {msg}") from exc
            with self._txn() as db:
                db.execute(
                    "UPDATE tx_attempts SET broadcast_at = ? WHERE id = ?", (time.time(), att.id)
                )
            return
        raise OutboxError(f"outbox #{rid}: no fee level accepted after {MAX_ATTEMPTS} tries")

    def _receipt(self, w3: Web3, rid: int) -> Any | None:
        for att in self._attempts(rid):
            try:
                with rpc_guard(w3, "eth_getTransactionReceipt"):
                    r = w3.eth.get_transaction_receipt(att.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            if r is not None:
                return r
        return None

    def _close(self, rid: int, state: str, receipt: Any | None) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE outbox SET state = ?, mined_hash = ?, block = ? WHERE id = ?",
                (
                    state,
                    _hex(receipt["transactionHash"]) if receipt is not None else None,
                    int(receipt["blockNumber"]) if receipt is not None else None,
                    rid,
                ),
            )

    def _settle(self, w3: Web3, account: LocalAccount, rid: int, timeout: float) -> Any:
        """Wait for a receipt of any attempt; bump a stuck one. Returns the receipt."""
        _, action, nonce = self._unsigned(rid)
        deadline = time.monotonic() + timeout
        while True:
            receipt = self._receipt(w3, rid)
            if receipt is not None:
                self._close(rid, "mined" if receipt["status"] == 1 else "reverted", receipt)
                return receipt
            with rpc_guard(w3, "eth_getTransactionCount"):
                mined_next = int(w3.eth.get_transaction_count(account.address, "latest"))
            if mined_next > nonce:
                receipt = self._receipt(w3, rid)  # mined between the two reads?
                if receipt is not None:
                    continue
                self._close(rid, "lost", None)
                raise NonceConsumed(account.address, nonce, action)
            last = self._attempts(rid)[-1]
            if last.broadcast_at is None:
                self._broadcast(w3, account, rid)
            elif (
                time.time() - last.created >= self.stuck_after
                and len(self._attempts(rid)) < MAX_ATTEMPTS
            ):  # stuck: same nonce, higher fees
                self._replace(w3, account, rid)
                self._broadcast(w3, account, rid)
            if time.monotonic() >= deadline:
                raise TxPending(action, last.tx_hash, nonce, f"no receipt within {timeout:.0f} s")
            time.sleep(self.poll_interval)

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
    ) -> Any:
        """Drop-in for ``contracts.client.send_transaction``: record, broadcast, settle."""
        self._redrive_unsent(w3, account)
        _, unsigned = prepare_transaction(w3, account, action, to=to, data=data, value=value)
        with _nonce_lock(account.address):  # nonce order == broadcast order
            rid = self._record_locked(w3, account, action, unsigned, data, value, to)
            self._broadcast(w3, account, rid)
        receipt = self._settle(w3, account, rid, receipt_timeout)
        if receipt["status"] != 1:
            call = {"from": account.address, "data": data, "value": value}
            if to is not None:
                call["to"] = to
            raise TransactionReverted(action, replay_reason(w3, call, receipt))
        return receipt

    def _redrive_unsent(self, w3: Web3, account: LocalAccount) -> None:
        """An earlier nonce that never reached the node would block this one: send it first."""
        for row in self.rows(account.address):
            if row.state == "pending" and self._attempts(row.id)[-1].broadcast_at is None:
                with _nonce_lock(account.address), contextlib.suppress(OutboxError):
                    self._broadcast(w3, account, row.id)

    def recover(self, w3: Web3, account: LocalAccount, timeout: float = 60.0) -> list[OutboxRow]:
        """After a restart: re-broadcast (or replace) every pending transaction of ``account``
        and wait for each to settle. Returns the rows it touched, in their final state."""
        touched = []
        for row in self.rows(account.address):
            if row.state != "pending":
                continue
            touched.append(row.id)
            try:
                if self._receipt(w3, row.id) is None:
                    with _nonce_lock(account.address):
                        self._broadcast(w3, account, row.id)
                self._settle(w3, account, row.id, timeout)
            except (TxPending, NonceConsumed, OutboxError):
                continue  # stays pending (or marked lost); reported by the caller
            except ContractsError:
                raise
        return [self.row(rid) for rid in touched]

    def pending(self, sender: str) -> list[OutboxRow]:
        return [r for r in self.rows(sender) if r.state == "pending"]


def tx_nonce(w3: Web3, tx_hash: str) -> int:
    """The nonce of a mined transaction (used to audit the outbox against the chain)."""
    with rpc_guard(w3, "eth_getTransactionByHash"):
        return int(w3.eth.get_transaction(cast(Any, tx_hash))["nonce"])


__all__ = ["OutboxRow", "TxOutbox", "bump_fees", "tx_nonce", "TxParams"]
