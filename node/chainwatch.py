"""Follow the contract's events at a confirmation depth, and notice reorgs.

A node acts on an event only once its block is ``confirmations`` blocks below the head, so a
short reorg (the common case: a competing block at the tip) replaces blocks before the node
has seen them and their events are never acted on. Deeper reorgs are detected: the follower
remembers the hashes of the blocks it processed (the end of every range and every block that
held an event); when one of them is no longer canonical it walks back to the newest block
still canonical, re-reads from there, does not deliver events again that survived the reorg,
and reports the ones that did not (orphaned) once the re-read has passed the old height.

Synchronous (JSON-RPC over web3): the daemon runs ``poll`` in a worker thread.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from dnode.contracts.client import ChainEvent

log = logging.getLogger("dnode.chain")

DEFAULT_CONFIRMATIONS = 2
MAX_RANGE = 2_000  # blocks per eth_getLogs (public endpoints cap ranges)
HISTORY = 256  # block hashes remembered (bounds the deepest reorg that is handled exactly)


class ChainReader(Protocol):
    def latest_block(self) -> int: ...
    def block_hash(self, number: int) -> str | None: ...
    def events(self, from_block: int, to_block: int | str = "latest") -> list[ChainEvent]: ...


@dataclass(frozen=True)
class Reorg:
    """Blocks above ``fork_block`` that the node had processed were replaced."""

    fork_block: int  # newest processed block that is still canonical
    processed_to: int  # the newest block processed before the reorg

    @property
    def depth(self) -> int:
        return self.processed_to - self.fork_block


@dataclass
class Batch:
    """What one poll found: new confirmed events, orphaned ones, and the chain position."""

    head: int
    confirmed: int  # newest block whose events have been delivered
    events: list[ChainEvent] = field(default_factory=list)
    orphaned: list[ChainEvent] = field(default_factory=list)
    reorg: Reorg | None = None


def event_key(ev: ChainEvent) -> str:
    """Identity of an event across a reorg (its block and log index may change, not this)."""
    return json.dumps([ev.tx_hash, ev.name, ev.args], sort_keys=True, default=_plain)


def _plain(v: Any) -> Any:
    return "0x" + v.hex() if isinstance(v, bytes | bytearray) else str(v)


class ChainFollower:
    def __init__(
        self,
        chain: ChainReader,
        start_block: int,
        confirmations: int = DEFAULT_CONFIRMATIONS,
        history: int = HISTORY,
    ) -> None:
        if confirmations < 0:
            raise ValueError("confirmations must be >= 0")
        self.chain = chain
        self.confirmations = confirmations
        self.history = history
        self.next_block = start_block
        self.head = -1
        self.hashes: dict[int, str] = {}  # processed block number -> its hash then
        self.delivered: dict[str, ChainEvent] = {}  # event key -> the event as delivered
        self.suspect: dict[str, ChainEvent] = {}  # delivered, then its block was reorged out
        self._suspect_until = -1  # re-read must pass this block before suspects are orphans
        self.reorgs = 0
        self.orphaned_total = 0

    @property
    def confirmed(self) -> int:
        return self.next_block - 1

    def poll(self) -> Batch:
        """Check for a reorg, then deliver the events of newly confirmed blocks."""
        head = self.chain.latest_block()
        self.head = head
        reorg = self._check_reorg()
        batch = Batch(head=head, confirmed=self.confirmed, reorg=reorg)
        safe = head - self.confirmations
        while self.next_block <= safe:
            to = min(safe, self.next_block + MAX_RANGE - 1)
            if not self._read(self.next_block, to, batch):
                break  # the chain moved under us: the next poll re-checks
        if self.suspect and self.confirmed >= self._suspect_until:
            batch.orphaned = sorted(
                self.suspect.values(), key=lambda e: (e.block_number, e.log_index)
            )
            self.orphaned_total += len(batch.orphaned)
            self.suspect.clear()
        batch.confirmed = self.confirmed
        return batch

    def _read(self, lo: int, hi: int, batch: Batch) -> bool:
        end_hash = self.chain.block_hash(hi)
        events = self.chain.events(lo, hi)
        if end_hash is None or self.chain.block_hash(hi) != end_hash:
            return False
        # hashes chain: with hi's hash unchanged, every block <= hi is as it was; the logs
        # must come from those blocks (a load-balanced endpoint may answer from another view)
        seen: dict[int, str | None] = {hi: end_hash}
        for ev in events:
            if ev.block_number not in seen:
                seen[ev.block_number] = self.chain.block_hash(ev.block_number)
            if ev.block_hash and ev.block_hash != seen[ev.block_number]:
                return False
        for number, h in seen.items():
            if h is not None:
                self.hashes[number] = h
        for ev in events:
            key = event_key(ev)
            survived = self.suspect.pop(key, None) is not None or key in self.delivered
            self.delivered[key] = ev
            if not survived:  # a survivor of a reorg was acted on already
                batch.events.append(ev)
        self.next_block = hi + 1
        self._prune()
        return True

    def _check_reorg(self) -> Reorg | None:
        if not self.hashes:
            return None
        newest = max(self.hashes)
        if self.chain.block_hash(newest) == self.hashes[newest]:
            return None
        fork = self.next_block - 1 - self.history
        for number in sorted(self.hashes, reverse=True):
            if self.chain.block_hash(number) == self.hashes[number]:
                fork = number
                break
        processed_to = self.confirmed
        self.reorgs += 1
        for number in [n for n in self.hashes if n > fork]:
            del self.hashes[number]
        for key, ev in list(self.delivered.items()):
            if ev.block_number > fork:
                self.suspect[key] = self.delivered.pop(key)
        self._suspect_until = max(self._suspect_until, processed_to)
        self.next_block = fork + 1
        log.debug(
            "chain reorg: blocks %d..%d were replaced; re-reading from block %d",
            fork + 1,
            processed_to,
            fork + 1,
        )
        return Reorg(fork, processed_to)

    def _prune(self) -> None:
        floor = self.next_block - self.history
        for number in [n for n in self.hashes if n < floor]:
            del self.hashes[number]
        for key in [k for k, e in self.delivered.items() if e.block_number < floor]:
            del self.delivered[key]
