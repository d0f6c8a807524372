"""Work-arounds for py-libp2p 0.8.1 defects, and building its host (used by ``node.p2p``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import multiaddr
import trio

from dnode.node.errors import P2PError
from dnode.node.p2p_wire import _expand_wildcards, _ma, keypair_from_seed
from dnode.node.transport import MAX_GOSSIP_SIZE

log = logging.getLogger("dnode.p2p")

# Headroom of the pubsub RPC size limit over MAX_GOSSIP_SIZE (signature, key, topic, seqno).
_RPC_OVERHEAD = 64 * 1024


class _LargeRpcQueues(dict):  # type: ignore[type-arg]
    """py-libp2p 0.8.1 creates each peer's outbound ``RpcQueue()`` with a hard-coded
    1 MiB limit that includes the RPC envelope (signature, key, sender record), so a
    1 MiB payload would be silently dropped as "oversized".  Raise it as the queues
    are registered."""

    def __setitem__(self, key: Any, queue: Any) -> None:
        if hasattr(queue, "max_message_size"):
            queue.max_message_size = max(queue.max_message_size, MAX_GOSSIP_SIZE + _RPC_OVERHEAD)
        super().__setitem__(key, queue)


def _harden_pubsub(lhost: Any, pubsub: Any) -> None:
    """Work around two py-libp2p 0.8.1 pubsub defects.

    1. GossipSub writes some RPCs (pending-message flush, recent-message replay)
       straight to a peer's stream while that peer's queue-sender task also writes to
       it.  RPCs larger than one yamux frame / the send window are written in several
       frames, so concurrent writers interleave and corrupt the varint framing.  We
       serialise ``write_msg`` per stream.
    2. ``Pubsub.stream_handler`` lets a protobuf ``DecodeError`` (garbage from a peer,
       or the corruption above) escape into the swarm's nursery, which tears down the
       whole host.  We wrap the handler: log, reset the stream, drop and disconnect
       the peer.
    """
    import weakref

    from libp2p.custom_types import TProtocol

    locks: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()
    write_msg = pubsub.write_msg

    async def locked_write_msg(stream: Any, rpc_msg: Any) -> bool:
        lock = locks.get(stream)
        if lock is None:
            lock = locks[stream] = trio.Lock()
        async with lock:
            return await write_msg(stream, rpc_msg)

    pubsub.write_msg = locked_write_msg
    stream_handler = pubsub.stream_handler

    async def safe_stream_handler(stream: Any) -> None:
        try:
            await stream_handler(stream)
        except Exception as e:  # noqa: BLE001
            peer = stream.muxed_conn.peer_id
            log.warning("gossip stream from %s failed (%r); dropping it", peer, e)
            with trio.CancelScope(shield=True), suppress(Exception):
                await stream.reset()
            try:
                pubsub._handle_dead_peer(peer)
                # a peer half-removed from pubsub would stay connected but deaf;
                # disconnect so that a legitimate peer re-dials and starts afresh.
                with trio.move_on_after(5):
                    await lhost.disconnect(peer)
            except Exception:  # noqa: BLE001
                log.debug("pubsub cleanup of %s failed", peer, exc_info=True)

    for proto in pubsub.router.get_protocols():
        lhost.set_stream_handler(TProtocol(proto), safe_stream_handler)


def _guard_stream_handlers(lhost: Any) -> None:
    """In py-libp2p 0.8.1 an exception escaping *any* protocol's stream handler
    propagates into the connection's nursery and tears down the whole host.  Install
    a swarm-level guard: log, reset that stream, keep serving."""
    network = lhost.get_network()
    inner = network.common_stream_handler

    async def guarded(net_stream: Any) -> None:
        try:
            await inner(net_stream)
        except Exception as e:  # noqa: BLE001
            peer = getattr(getattr(net_stream, "muxed_conn", None), "peer_id", "?")
            log.warning(
                "stream handler for %s from %s failed (%r); stream reset",
                net_stream.get_protocol(),
                peer,
                e,
            )
            with trio.CancelScope(shield=True), suppress(Exception):
                await net_stream.reset()

    network.set_stream_handler(guarded)


def _leaves(eg: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in eg.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


def _check_ports_free(maddrs: Sequence[multiaddr.Multiaddr]) -> None:
    """py-libp2p 0.8.1 listens with SO_REUSEPORT, so a second node on a busy port
    would silently share it (the kernel load-balances connections between them).
    Probe explicit ports without SO_REUSEPORT first."""
    import socket

    for ma in maddrs:
        parts = str(ma).split("/")
        if len(parts) < 5 or parts[3] != "tcp" or parts[1] not in ("ip4", "ip6"):
            continue
        port = int(parts[4])
        if port == 0:
            continue
        family = socket.AF_INET if parts[1] == "ip4" else socket.AF_INET6
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((parts[2], port))
            except OSError as e:
                raise P2PError(f"cannot listen on {ma}: {e.strerror or e}") from e


def _build_libp2p_host(seed: bytes, mdns: bool, announce: Sequence[str] | None) -> Any:
    from libp2p import new_host
    from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
    from libp2p.custom_types import TProtocol
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    key_pair = keypair_from_seed(seed)
    return new_host(
        key_pair=key_pair,
        sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=new_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX_ID): Yamux},
        enable_mDNS=mdns,
        # either a fixed public address list, or our listen addrs with 0.0.0.0 expanded
        announce_addrs=[_ma(a) for a in announce] if announce else None,
        addrs_factory=None if announce else _expand_wildcards,
        # identify's "observed address" of an outbound TCP connection is an ephemeral
        # port (py-libp2p does not dial from its listen port): never advertise it.
        disable_identify_address_discovery=True,
    )
