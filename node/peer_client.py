"""Short-lived libp2p clients for requesters and data owners (no daemon, no stake needed).

A data owner's plaintext never leaves this process: values are encoded and Shamir-shared here,
and each committee seat receives only its own share over a Noise-encrypted stream to the
peer id the seat holder registered on-chain.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from eth_account.signers.local import LocalAccount

from dnode.contracts.client import ChainClient
from dnode.node.errors import NodeError, P2PError
from dnode.node.mpc.commitments import seat_digests
from dnode.node.mpc.influence import table_witness, task_witness
from dnode.node.mpc.sharing import share, task_modulus
from dnode.node.p2p import P2PHost, open_host
from dnode.node.protocol import (
    PROTO_ANNOUNCE,
    PROTO_NOTICE,
    PROTO_PARAMS,
    PROTO_SHARES,
    Announcement,
    Contribution,
    OwnerNotice,
    check_reply,
    dumps,
)
from dnode.scheduler.programs import TaskParams, threshold_for

log = logging.getLogger("dnode.client")


@asynccontextmanager
async def ephemeral_host(bootstrap: list[str]) -> AsyncIterator[P2PHost]:
    if not bootstrap:
        raise P2PError("no --bootstrap peer given: a client reaches the network through one")
    async with open_host(secrets.token_bytes(32), ["/ip4/127.0.0.1/tcp/0"], bootstrap) as host:
        with trio.move_on_after(15):
            while not host.connected_peers():
                await trio.sleep(0.1)
        if not host.connected_peers():
            raise P2PError(f"cannot reach any bootstrap peer of {', '.join(bootstrap)}")
        yield host


ANNOUNCE_WINDOW = 30.0  # seconds a client keeps trying to hand its task to some peer


async def announce(bootstrap: list[str], task_id: int, params: TaskParams) -> int:
    """Tell the bootstrap peers about the task; they check it on-chain and gossip it on.

    A busy or restarting peer may reset one request: the peers this host is connected to (the
    bootstrap peers and whoever it learned of since) are asked again until one accepts or
    ANNOUNCE_WINDOW s have passed."""
    accepted = 0
    async with ephemeral_host(bootstrap) as host:
        with trio.move_on_after(ANNOUNCE_WINDOW):
            while True:
                accepted = await announce_via(host, host.connected_peers(), task_id, params)
                if accepted:
                    break
                await trio.sleep(2.0)
    if not accepted:
        raise P2PError("no peer accepted the task announcement")
    return accepted


async def announce_via(host: P2PHost, peers: list[str], task_id: int, params: TaskParams) -> int:
    """Announce on an already open host (long-lived clients); returns how many peers accepted."""
    msg = Announcement(task_id, params.canonical()).to_bytes()
    accepted = 0
    for peer in peers:
        try:
            check_reply(peer, await host.request(peer, PROTO_ANNOUNCE, msg, timeout=15))
            accepted += 1
        except NodeError as e:
            log.warning("announce to %s failed: %s", peer, e)
    return accepted


async def fetch_params(host: P2PHost, task_id: int, digest: bytes) -> TaskParams:
    for peer in host.connected_peers():
        try:
            obj = check_reply(
                peer,
                await host.request(peer, PROTO_PARAMS, dumps({"task_id": task_id}), timeout=10),
            )
            params = TaskParams.from_bytes(bytes.fromhex(str(obj["params"])[2:]))
            if params.digest == digest:
                return params
            log.warning("peer %s sent params that do not match the chain", peer)
        except (NodeError, ValueError, KeyError) as e:
            log.info("params from %s: %s", peer, e)
    raise P2PError(f"no peer knows the params of task {task_id}")


async def contribute(
    bootstrap: list[str],
    chain: ChainClient,
    account: LocalAccount,
    task_id: int,
    params: TaskParams,
    table: str | Path,
) -> list[str]:
    """Share the owner's ``table`` file (CSV, checked against the task's schema) among the
    committee of ``task_id``; returns the seat holders' peer ids."""
    encoded = params.encode_table(table, account.address)
    async with ephemeral_host(bootstrap) as host:
        return await contribute_to_committee(host, chain, account, task_id, params, encoded)


async def contribute_to_committee(
    host: P2PHost,
    chain: ChainClient,
    account: LocalAccount,
    task_id: int,
    params: TaskParams,
    encoded: list[int],
    round: int = 0,
) -> list[str]:
    """Deliver already encoded values to the formed committee of ``task_id`` over ``host``.

    ``round`` 1: to the re-execution committee of a disputed task (its m + 2 seats), with
    fresh shares: the original committee's shares are never reused."""
    task = chain.task_info(task_id)
    seats = chain.rerun_seats(task_id) if round else chain.seats(task_id)
    peers = [chain.node_info(a).peer_id for a in seats]
    await contribute_via(
        host,
        chain.deployment.chain_id,
        chain.deployment.address,
        account,
        task_id,
        params,
        encoded,
        peers,
        len(seats) if round else task.committee_size,
        round,
    )
    return peers


async def contribute_via(
    host: P2PHost,
    chain_id: int,
    contract: str,
    account: LocalAccount,
    task_id: int,
    params: TaskParams,
    encoded: list[int],
    peers: list[str],
    m: int | None = None,
    round: int = 0,
) -> None:
    """Shamir-share ``encoded`` values (``params.encode_table``) here and send seat i (held by
    ``peers[i]``) only its share, on an already open host; ``m`` is the committee size."""
    m = len(peers) if m is None else m
    contributions = signed_contributions(
        chain_id, contract, account, task_id, params, encoded, m, round
    )
    async with trio.open_nursery() as nursery:
        for seat, peer in enumerate(peers):
            nursery.start_soon(_deliver, host, peer, contributions[seat])


def signed_contributions(
    chain_id: int,
    contract: str,
    account: LocalAccount,
    task_id: int,
    params: TaskParams,
    encoded: list[int],
    m: int,
    round: int = 0,
) -> list[Contribution]:
    """ONE sharing of ``encoded`` for the m seats of a round: each seat's signed contribution,
    all carrying the same per-seat digests (node.mpc.commitments)."""
    modulus = task_modulus(params)
    # the witness lets the committee check this owner's influence inside the MPC
    w = task_witness(params)
    vector = list(encoded) if w is None else [*encoded, *table_witness(list(encoded), w)]
    shares = share(vector, m, threshold_for(m), modulus)
    # the same per-seat digests go to every seat: one sharing per round (finding 4)
    digests = seat_digests(chain_id, contract, task_id, round, account.address, modulus, shares)
    return [
        Contribution(
            chain_id,
            contract,
            task_id,
            account.address,
            seat,
            modulus,
            tuple(shares[seat]),
            round=round,
            commitment=tuple(digests),
        ).signed(account)
        for seat in range(m)
    ]


async def _deliver(host: P2PHost, peer: str, c: Contribution) -> None:
    last: Exception | None = None
    for attempt in range(5):
        try:
            check_reply(peer, await host.request(peer, PROTO_SHARES, c.to_bytes(), timeout=20))
            return
        except NodeError as e:
            last = e
            await trio.sleep(1 + attempt)
    raise P2PError(f"could not deliver shares to seat {c.seat} ({peer}): {last}")


async def fetch_notices(host: P2PHost, task_id: int) -> list[OwnerNotice]:
    """The data owners' notices on ``task_id`` the connected peers keep (each signature
    checked here), newest per owner."""
    newest: dict[str, OwnerNotice] = {}
    for peer in host.connected_peers():
        try:
            obj = check_reply(
                peer,
                await host.request(peer, PROTO_NOTICE, dumps({"task_id": task_id}), timeout=10),
            )
            items = obj.get("notices")
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict):
                    continue
                try:
                    n = OwnerNotice.from_obj(peer, item)
                except NodeError as e:
                    log.warning("notice from %s dropped: %s", peer, e)
                    continue
                prev = newest.get(n.owner.lower())
                if n.task_id == task_id and (prev is None or n.seq > prev.seq):
                    newest[n.owner.lower()] = n
        except NodeError as e:
            log.info("owner notices from %s: %s", peer, e)
    return sorted(newest.values(), key=lambda n: n.owner.lower())
