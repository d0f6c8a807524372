"""Deliver a stored sharing: each seat's contribution, again and again, until that seat
acknowledges it (a node stores shares before it replies ok) or the round stops taking inputs.

Only the stored contributions are ever sent (node.owner.state), so a retry, and a restarted
agent, send the same bytes: a seat that already holds them answers ok again. A seat that is
down gets a retry every ``retry_interval`` seconds until the round closes (the task leaves
the computing status on chain: reported, refunded, ... ); a seat that answers that its
computation has started will never take them and is given up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from dnode.node.errors import NodeError, RequestRefused
from dnode.node.metrics import Metrics
from dnode.node.owner.state import OwnerState, SeatDelivery
from dnode.node.protocol import PROTO_SHARES, check_reply
from dnode.node.transport import Transport

log = logging.getLogger("dnode.owner")

REQUEST_TIMEOUT = 20.0
FINAL_REFUSALS = ("computation has already started",)


@dataclass
class RoundDelivery:
    """One round's delivery loop and what it gave up on."""

    task_id: int
    round: int
    given_up: set[int] = field(default_factory=set)

    def pending(self, rows: list[SeatDelivery]) -> list[SeatDelivery]:
        return [d for d in rows if d.acked_at is None and d.seat not in self.given_up]


async def deliver_round(
    host: Transport,
    state: OwnerState,
    task_id: int,
    round: int,
    seat_peers: Callable[[], Awaitable[list[str]]],
    still_open: Callable[[], Awaitable[bool]],
    retry_interval: float,
    metrics: Metrics | None = None,
) -> bool:
    """Send every unacknowledged seat its stored contribution until all acknowledged
    (True) or the round closed (False)."""
    rd = RoundDelivery(task_id, round)
    while True:
        todo = rd.pending(state.sharing(task_id, round))
        if not todo:
            return not rd.given_up
        if not await still_open():
            log.warning(
                "task %d round %d: inputs closed with %d seat(s) never acknowledging",
                task_id, round, len(todo),
            )  # fmt: skip
            return False
        try:
            peers = await seat_peers()
        except NodeError as e:
            log.warning("task %d round %d: seat peers unknown: %s", task_id, round, e)
            peers = []
        if peers:
            async with trio.open_nursery() as nursery:
                for d in todo:
                    if d.seat < len(peers):
                        nursery.start_soon(_send, host, state, rd, d, peers[d.seat], metrics)
        if rd.pending(state.sharing(task_id, round)):
            await trio.sleep(retry_interval)


async def _send(
    host: Transport,
    state: OwnerState,
    rd: RoundDelivery,
    d: SeatDelivery,
    peer: str,
    metrics: Metrics | None,
) -> None:
    try:
        reply = await host.request(peer, PROTO_SHARES, d.contribution, timeout=REQUEST_TIMEOUT)
        check_reply(peer, reply)
    except RequestRefused as e:
        state.failed_attempt(d.task_id, d.round, d.seat, e.detail)
        if metrics is not None:
            metrics.inc("owner_delivery_failures_total")
        if any(f in e.detail for f in FINAL_REFUSALS):
            rd.given_up.add(d.seat)
            log.warning("task %d round %d: seat %d (%s) will not take shares: %s",
                        d.task_id, d.round, d.seat, peer, e.detail)  # fmt: skip
        else:
            log.info("task %d round %d: seat %d (%s) refused, retrying: %s",
                     d.task_id, d.round, d.seat, peer, e.detail)  # fmt: skip
        return
    except NodeError as e:
        state.failed_attempt(d.task_id, d.round, d.seat, str(e))
        if metrics is not None:
            metrics.inc("owner_delivery_failures_total")
        log.info("task %d round %d: seat %d (%s) unreachable, retrying: %s",
                 d.task_id, d.round, d.seat, peer, e)  # fmt: skip
        return
    state.ack(d.task_id, d.round, d.seat)
    if metrics is not None:
        metrics.inc("owner_deliveries_total")
    # tests read this line: one per seat and round
    log.info("task %d round %d: seat %d (%s) acknowledged the shares (attempt %d)",
             d.task_id, d.round, d.seat, peer, d.attempts + 1)  # fmt: skip
