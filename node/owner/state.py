"""The owner agent's crash-safe memory: SQLite (WAL, synchronous=FULL) under HOME/owner-state.

Decide-and-record: a task's decision (accepted / pending / approved / rejected / refused) is
written once, in one transaction that first checks for an earlier one, and never re-decided.
A round's sharing (every seat's signed contribution) is stored in one transaction BEFORE the
first share leaves the process; if one is already stored, the new one is discarded and the
stored one is sent. So a restarted agent re-sends the SAME shares (same randomness, same
signed commitment) and never a second sharing of a round, which would hand two different
sharings to the seats and break the MPC and the input commitments (node.mpc.commitments).
A seat counts as delivered only once it replied ok (nodes store the shares before that).

The sharings of a round together are the owner's plaintext: the db is 0600 in a 0700 dir
(as the file they came from should be) and a task's sharings are deleted, overwritten
(``secure_delete``), when the task settles on chain.

One agent per home: ``open_owner_state`` takes an exclusive flock; the CLI's approve,
reject and pending open the same file without the lock (SQLite serializes the writers).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dnode.contracts.outbox import connect_db, write_txn
from dnode.node.errors import StateError
from dnode.node.owner.errors import NotPending, UnknownTask
from dnode.node.state import lock_state_dir

DB_NAME = "owner.db"
LOCK_NAME = "owner.lock"

# decisions: accepted (policy) / approved (owner) contribute; pending waits for the owner;
# rejected (policy or owner) and refused (unusable params or file) never contribute
ACCEPTED, PENDING, APPROVED, REJECTED, REFUSED = (
    "accepted", "pending", "approved", "rejected", "refused",
)  # fmt: skip
CONTRIBUTING = (ACCEPTED, APPROVED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    task_id INTEGER PRIMARY KEY,
    dataset TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    requester TEXT NOT NULL DEFAULT '',
    program TEXT NOT NULL DEFAULT '',
    decided_at REAL NOT NULL,
    updated REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    params BLOB
);
CREATE TABLE IF NOT EXISTS sharings (
    task_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    seat INTEGER NOT NULL,
    contribution BLOB NOT NULL,
    created REAL NOT NULL,
    acked_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, round, seat)
);
"""


@dataclass(frozen=True)
class Decision:
    task_id: int
    dataset: str
    state: str
    reason: str
    requester: str
    program: str
    decided_at: float
    updated: float
    closed: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__}


@dataclass(frozen=True)
class SeatDelivery:
    task_id: int
    round: int
    seat: int
    contribution: bytes
    acked_at: float | None
    attempts: int
    last_error: str


class OwnerState:
    """Thread-safe: the agent writes from trio and from worker threads."""

    def __init__(self, state_dir: Path, lock_file: IO[str] | None = None) -> None:
        self.dir = state_dir
        self.path = state_dir / DB_NAME
        self._lock_file = lock_file
        self._mu = threading.Lock()
        with contextlib.suppress(PermissionError):
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
        self.db = connect_db(self.path)
        self.db.execute("PRAGMA secure_delete=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._mu:
            self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _txn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_txn(self.db, self._mu)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._mu:
            return list(self.db.execute(sql, args).fetchall())

    # ---- decisions ----------------------------------------------------------------------

    def decide(
        self,
        task_id: int,
        dataset: str,
        state: str,
        reason: str = "",
        requester: str = "",
        program: str = "",
        params: bytes | None = None,
    ) -> Decision:
        """Record the decision for ``task_id`` unless one exists; returns the one that holds.
        ``params``: the task's canonical params (a restarted agent needs no peer for them)."""
        now = time.time()
        with self._txn() as db:
            row = db.execute("SELECT * FROM decisions WHERE task_id=?", (task_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO decisions (task_id, dataset, state, reason, requester, program,"
                    " decided_at, updated, params) VALUES (?,?,?,?,?,?,?,?,?)",
                    (task_id, dataset, state, reason, requester, program, now, now, params),
                )
                row = db.execute("SELECT * FROM decisions WHERE task_id=?", (task_id,)).fetchone()
        return _decision(row)

    def _resolve(self, task_id: int, state: str, reason: str) -> Decision:
        with self._txn() as db:
            row = db.execute("SELECT * FROM decisions WHERE task_id=?", (task_id,)).fetchone()
            if row is None:
                raise UnknownTask(task_id)
            if row[2] != PENDING:
                raise NotPending(task_id, row[2])
            db.execute(
                "UPDATE decisions SET state=?, reason=?, updated=? WHERE task_id=?",
                (state, reason, time.time(), task_id),
            )
            row = db.execute("SELECT * FROM decisions WHERE task_id=?", (task_id,)).fetchone()
        return _decision(row)

    def approve(self, task_id: int) -> Decision:
        """The owner approves a pending task: the agent contributes to it."""
        return self._resolve(task_id, APPROVED, "approved by the owner")

    def reject(self, task_id: int, reason: str = "") -> Decision:
        return self._resolve(task_id, REJECTED, reason or "rejected by the owner")

    def refuse(self, task_id: int, reason: str) -> Decision:
        """A contributing task turned out unusable (file unreadable, committee not ranked)
        before any share was sent: refused, with the reason; a sharing stored ahead of the
        committee (never sent) is deleted. Once a share was sent, the decision stands."""
        with self._txn() as db:
            sent = db.execute(
                "SELECT COUNT(*) FROM sharings WHERE task_id=?"
                " AND (acked_at IS NOT NULL OR attempts > 0)",
                (task_id,),
            ).fetchone()[0]
            if not sent:
                db.execute("DELETE FROM sharings WHERE task_id=?", (task_id,))
                db.execute(
                    "UPDATE decisions SET state=?, reason=?, updated=? WHERE task_id=?",
                    (REFUSED, reason, time.time(), task_id),
                )
            row = db.execute("SELECT * FROM decisions WHERE task_id=?", (task_id,)).fetchone()
        if row is None:
            raise UnknownTask(task_id)
        return _decision(row)

    def params(self, task_id: int) -> bytes | None:
        rows = self._read("SELECT params FROM decisions WHERE task_id=?", (task_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def decision(self, task_id: int) -> Decision | None:
        rows = self._read("SELECT * FROM decisions WHERE task_id=?", (task_id,))
        return _decision(rows[0]) if rows else None

    def decisions(self, states: Sequence[str] = (), open_only: bool = False) -> list[Decision]:
        sql, args = "SELECT * FROM decisions", ()  # type: tuple[str, tuple[Any, ...]]
        where = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args = tuple(states)
        if open_only:
            where.append("closed=0")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_decision(r) for r in self._read(sql + " ORDER BY task_id", args)]

    def contributed_since(self, dataset: str, since: float) -> int:
        """Tasks this dataset was committed to (accepted or approved) since ``since``."""
        rows = self._read(
            "SELECT COUNT(*) FROM decisions WHERE dataset=? AND state IN (?,?) AND updated>=?",
            (dataset, *CONTRIBUTING, since),
        )
        return int(rows[0][0])

    def close_task(self, task_id: int) -> int:
        """The task settled on chain: mark it closed and delete its sharings."""
        with self._txn() as db:
            db.execute("UPDATE decisions SET closed=1, updated=? WHERE task_id=?",
                       (time.time(), task_id))  # fmt: skip
            return db.execute("DELETE FROM sharings WHERE task_id=?", (task_id,)).rowcount

    # ---- sharings -----------------------------------------------------------------------

    def record_sharing(
        self, task_id: int, round: int, contributions: Sequence[bytes]
    ) -> list[SeatDelivery]:
        """Store a round's sharing unless one is stored; returns the stored one (the only
        one that may ever be sent)."""
        now = time.time()
        with self._txn() as db:
            have = db.execute(
                "SELECT COUNT(*) FROM sharings WHERE task_id=? AND round=?", (task_id, round)
            ).fetchone()[0]
            if not have:
                db.executemany(
                    "INSERT INTO sharings (task_id, round, seat, contribution, created)"
                    " VALUES (?,?,?,?,?)",
                    [(task_id, round, s, bytes(c), now) for s, c in enumerate(contributions)],
                )
        return self.sharing(task_id, round)

    def sharing(self, task_id: int, round: int) -> list[SeatDelivery]:
        rows = self._read(
            "SELECT task_id, round, seat, contribution, acked_at, attempts, last_error"
            " FROM sharings WHERE task_id=? AND round=? ORDER BY seat",
            (task_id, round),
        )
        return [SeatDelivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def ack(self, task_id: int, round: int, seat: int) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE sharings SET acked_at=?, attempts=attempts+1, last_error=''"
                " WHERE task_id=? AND round=? AND seat=? AND acked_at IS NULL",
                (time.time(), task_id, round, seat),
            )

    def failed_attempt(self, task_id: int, round: int, seat: int, error: str) -> None:
        with self._txn() as db:
            db.execute(
                "UPDATE sharings SET attempts=attempts+1, last_error=?"
                " WHERE task_id=? AND round=? AND seat=?",
                (error[:500], task_id, round, seat),
            )

    def delivery_counts(self) -> dict[str, int]:
        rows = self._read(
            "SELECT COUNT(*), COUNT(acked_at), COALESCE(SUM(attempts), 0) FROM sharings"
        )
        total, acked, attempts = rows[0]
        return {"seats": int(total), "acked": int(acked), "attempts": int(attempts)}


def _decision(row: Any) -> Decision:
    return Decision(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8])
    )


def open_owner_state(state_dir: Path) -> OwnerState:
    """Lock the agent's state dir for this process (or raise StateLocked) and open its db."""
    f = lock_state_dir(state_dir, LOCK_NAME)
    try:
        return OwnerState(state_dir, f)
    except sqlite3.Error as e:
        f.close()
        raise StateError(f"cannot open {state_dir / DB_NAME}: {e}") from None


def shared_state(state_dir: Path) -> OwnerState:
    """The state of a (possibly running) agent, for the CLI's pending / approve / reject."""
    if not (state_dir / DB_NAME).exists():
        raise StateError(f"no owner agent state in {state_dir} (run dnode owner start first)")
    return OwnerState(state_dir)
