"""Crash-safe local state of one node: SQLite (WAL, synchronous=FULL) under its state dir.

Every fact the node acts on is committed here BEFORE it takes effect: a seat before the node
works on it, an owner's shares before the node acknowledges them, a result before it is
signed, a signature before it leaves the process, and (in ``contracts.outbox``, same file) a
signed transaction before it is broadcast. After ``kill -9`` the node reopens the file and
knows exactly what it held and what it promised.

Signing protection (as Ethereum validator clients keep a slashing-protection DB): a report
signature is only produced inside one SQLite write transaction that first checks the
``signatures`` table. A request to sign a different result for a task this node already
signed for raises ``DoubleSignRefused`` and is recorded in ``refusals``; it is never signed.
The report signature covers (chain, contract, task, result) but not the round, so the check
is per task across both rounds.

Privacy at rest (issue 13, finding 6): the state dir is 0700 and ``node.db`` (with its WAL)
0600 whatever the umask; task files go through :func:`write_private` (0600).  Deleted rows
are overwritten (``secure_delete``); :mod:`node.retention` purges a task's shares once it
settled on chain and the retention window passed.

One process per state dir: ``open_state`` takes an exclusive ``fcntl.flock`` on
``node.lock``; the kernel releases it when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from eth_utils import keccak

from dnode.contracts.outbox import connect_db, write_txn
from dnode.node.errors import DoubleSignRefused, StateError, StateLocked

DB_NAME = "node.db"
LOCK_NAME = "node.lock"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, readable by this user only (any umask)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # an older tmp file may have had other bits
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(text)
    finally:
        if fd >= 0:
            os.close(fd)
    os.replace(tmp, path)


def _make_private(path: Path) -> None:
    """Create ``path`` 0600 if missing; tighten it (and SQLite's -wal/-shm) if it exists."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(p, PRIVATE_FILE)


SCHEMA = """
CREATE TABLE IF NOT EXISTS seats (
    task_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    seat INTEGER NOT NULL,
    committee TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'seated',
    note TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL,
    PRIMARY KEY (task_id, round)
);
CREATE TABLE IF NOT EXISTS params (
    task_id INTEGER PRIMARY KEY,
    canonical BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS shares (
    task_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    owner TEXT NOT NULL,
    contribution BLOB NOT NULL,
    PRIMARY KEY (task_id, round, owner)
);
CREATE TABLE IF NOT EXISTS results (
    task_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    result BLOB NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (task_id, round)
);
CREATE TABLE IF NOT EXISTS signatures (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    result_digest BLOB NOT NULL,
    signature BLOB NOT NULL,
    signed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signatures_task ON signatures (task_id);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    signed_digest BLOB NOT NULL,
    requested_digest BLOB NOT NULL,
    at REAL NOT NULL
);
"""

# seat states: seated -> computed -> signed -> reported -> closed | abandoned
OPEN_SEAT_STATES = ("seated", "computed", "signed", "reported")


@dataclass(frozen=True)
class HeldSeat:
    task_id: int
    round: int
    seat: int
    committee: list[str]
    state: str
    note: str


@dataclass(frozen=True)
class SignatureRow:
    task_id: int
    round: int
    result_digest: bytes
    signature: bytes


class NodeState:
    """The node's durable memory. Thread-safe (the daemon writes from trio and from threads)."""

    def __init__(self, state_dir: Path, lock_file: IO[str] | None = None) -> None:
        self.dir = state_dir
        self.path = state_dir / DB_NAME
        self._lock_file = lock_file
        self._mu = threading.Lock()
        with contextlib.suppress(PermissionError):  # read_only() by another user
            _make_private(self.path)
        self.db = connect_db(self.path)
        self.db.execute("PRAGMA secure_delete=ON")  # purged shares are overwritten, not freed
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._mu:
            self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _txn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_txn(self.db, self._mu)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._mu:
            return list(self.db.execute(sql, args).fetchall())

    # ---- seats ----------------------------------------------------------------------------

    def hold_seat(self, task_id: int, round: int, seat: int) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT INTO seats (task_id, round, seat, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (task_id, round) DO UPDATE SET seat = excluded.seat",
                (task_id, round, seat, time.time()),
            )

    def set_committee(self, task_id: int, round: int, committee: list[str]) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE seats SET committee = ?, updated = ? WHERE task_id = ? AND round = ?",
                (json.dumps(committee), time.time(), task_id, round),
            )

    def set_seat_state(self, task_id: int, round: int, state: str, note: str = "") -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE seats SET state = ?, note = ?, updated = ? WHERE task_id = ? AND round = ?",
                (state, note[:500], time.time(), task_id, round),
            )

    def seat(self, task_id: int, round: int) -> HeldSeat | None:
        rows = self._read(
            "SELECT task_id, round, seat, committee, state, note FROM seats "
            "WHERE task_id = ? AND round = ?",
            (task_id, round),
        )
        return _seat(rows[0]) if rows else None

    def open_seats(self) -> list[HeldSeat]:
        marks = ",".join("?" * len(OPEN_SEAT_STATES))
        rows = self._read(
            "SELECT task_id, round, seat, committee, state, note FROM seats "
            f"WHERE state IN ({marks}) ORDER BY task_id, round",
            OPEN_SEAT_STATES,
        )
        return [_seat(r) for r in rows]

    def seats(self) -> list[HeldSeat]:
        rows = self._read(
            "SELECT task_id, round, seat, committee, state, note FROM seats ORDER BY task_id, round"
        )
        return [_seat(r) for r in rows]

    # ---- params, shares, results ----------------------------------------------------------

    def save_params(self, task_id: int, canonical: bytes) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT OR IGNORE INTO params (task_id, canonical) VALUES (?, ?)",
                (task_id, canonical),
            )

    def params(self, task_id: int) -> bytes | None:
        rows = self._read("SELECT canonical FROM params WHERE task_id = ?", (task_id,))
        return bytes(rows[0][0]) if rows else None

    def save_shares(self, task_id: int, round: int, owner: str, contribution: bytes) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT OR REPLACE INTO shares (task_id, round, owner, contribution) "
                "VALUES (?, ?, ?, ?)",
                (task_id, round, owner.lower(), contribution),
            )

    def shares(self, task_id: int, round: int) -> dict[str, bytes]:
        rows = self._read(
            "SELECT owner, contribution FROM shares WHERE task_id = ? AND round = ?",
            (task_id, round),
        )
        return {str(o): bytes(c) for o, c in rows}

    def settled_with_shares(self, before: float) -> list[tuple[int, int]]:
        """(task, round) pairs whose seat closed/was abandoned before ``before`` and that
        still hold shares: candidates for :mod:`node.retention`."""
        rows = self._read(
            "SELECT DISTINCT s.task_id, s.round FROM seats s JOIN shares h "
            "ON h.task_id = s.task_id AND h.round = s.round "
            "WHERE s.state IN ('closed', 'abandoned') AND s.updated < ? ORDER BY 1, 2",
            (before,),
        )
        return [(int(t), int(r)) for t, r in rows]

    def purge_shares(self, task_id: int, round: int) -> int:
        """Delete (and overwrite) a task round's shares; returns how many were removed."""
        with self._txn() as db:
            n = db.execute(
                "DELETE FROM shares WHERE task_id = ? AND round = ?", (task_id, round)
            ).rowcount
        with self._mu:  # fold the WAL (which still holds the old pages) into the db file
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def save_result(self, task_id: int, round: int, result: bytes, record: dict[str, Any]) -> None:
        with self._txn() as db:
            db.execute(
                "INSERT OR IGNORE INTO results (task_id, round, result, record) "
                "VALUES (?, ?, ?, ?)",
                (task_id, round, result, json.dumps(record, sort_keys=True)),
            )
            db.execute(
                "UPDATE seats SET state = 'computed', updated = ? "
                "WHERE task_id = ? AND round = ? AND state = 'seated'",
                (time.time(), task_id, round),
            )

    def result(self, task_id: int, round: int) -> tuple[bytes, dict[str, Any]] | None:
        rows = self._read(
            "SELECT result, record FROM results WHERE task_id = ? AND round = ?", (task_id, round)
        )
        return (bytes(rows[0][0]), json.loads(rows[0][1])) if rows else None

    # ---- signing protection ---------------------------------------------------------------

    def sign_once(
        self, task_id: int, round: int, result: bytes, sign: Callable[[bytes], bytes]
    ) -> bytes:
        """The node's report signature over ``result``, produced at most once per task.

        Check and write happen in one IMMEDIATE transaction, committed before the signature is
        returned (so before it can reach any peer). The same result again returns the stored
        signature; a different one raises DoubleSignRefused (and is recorded)."""
        digest = keccak(result)
        refused: DoubleSignRefused | None = None
        with self._txn() as db:
            row = db.execute(
                "SELECT result_digest, signature, round FROM signatures WHERE task_id = ? "
                "ORDER BY id LIMIT 1",
                (task_id,),
            ).fetchone()
            if row is not None and bytes(row[0]) == digest:
                return bytes(row[1])
            if row is not None:
                refused = DoubleSignRefused(task_id, round, bytes(row[0]), digest)
                db.execute(
                    "INSERT INTO refusals (task_id, round, signed_digest, requested_digest, at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (task_id, round, bytes(row[0]), digest, time.time()),
                )
            else:
                sig = sign(result)
                db.execute(
                    "INSERT INTO signatures (task_id, round, result_digest, signature, signed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (task_id, round, digest, sig, time.time()),
                )
                db.execute(
                    "UPDATE seats SET state = 'signed', updated = ? WHERE task_id = ? "
                    "AND round = ? AND state IN ('seated', 'computed')",
                    (time.time(), task_id, round),
                )
        if refused is not None:  # raised after COMMIT so the refusal itself is durable
            raise refused
        return sig

    def signature(self, task_id: int) -> SignatureRow | None:
        rows = self._read(
            "SELECT task_id, round, result_digest, signature FROM signatures "
            "WHERE task_id = ? ORDER BY id LIMIT 1",
            (task_id,),
        )
        if not rows:
            return None
        t, r, d, s = rows[0]
        return SignatureRow(int(t), int(r), bytes(d), bytes(s))

    def signatures(self) -> list[SignatureRow]:
        rows = self._read(
            "SELECT task_id, round, result_digest, signature FROM signatures ORDER BY id"
        )
        return [SignatureRow(int(t), int(r), bytes(d), bytes(s)) for t, r, d, s in rows]

    def refusals(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM refusals")[0][0])


def _seat(row: Any) -> HeldSeat:
    t, r, s, c, st, note = row
    return HeldSeat(int(t), int(r), int(s), json.loads(c), str(st), str(note))


def lock_state_dir(state_dir: Path, lock_name: str) -> IO[str]:
    """Create the private state dir and take its exclusive lock for this process (StateLocked
    names the holder); the open lock file holds the lock until closed or the process dies."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(state_dir, PRIVATE_DIR)  # shares live here: never group/world readable
        f = open(state_dir / lock_name, "a+")  # noqa: SIM115 - held for the process lifetime
    except OSError as e:
        raise StateError(f"cannot open the state dir {state_dir}: {e.strerror or e}") from None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise StateLocked(str(state_dir), holder) from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f


def open_state(state_dir: Path) -> NodeState:
    """Lock the state dir for this process (or raise StateLocked) and open its database."""
    f = lock_state_dir(state_dir, LOCK_NAME)
    try:
        return NodeState(state_dir, f)
    except sqlite3.Error as e:
        f.close()
        raise StateError(f"cannot open {state_dir / DB_NAME}: {e}") from None


def read_only(state_dir: Path) -> NodeState:
    """Open a (possibly running) node's state for inspection, without taking its lock."""
    if not (state_dir / DB_NAME).exists():
        raise StateError(f"no node state in {state_dir}")
    return NodeState(state_dir)
