"""The real :class:`node.transport.Transport`: py-libp2p 0.8.1 on trio.

Stack: Ed25519 identity derived from a 32-byte seed, TCP transport, Noise security
(only Noise is offered: no TLS/secio/plaintext fallback), yamux muxer, identify,
gossipsub (``Pubsub`` + ``GossipSub`` run as anyio_service services inside the
context), optional mDNS, and three stream protocols of our own:

* user request/response protocols (``set_handler`` / ``request``): one stream per
  request, each direction one frame = 4-byte big-endian length + payload, the
  requester half-closes after its frame; frames larger than ``max_frame`` are refused;
* ``/dnode/directory/1.0.0``: "which addresses do you know for these peer ids?";
* ``/dnode/tunnel/1.0.0`` (see :mod:`node.tunnel`).

Beside it: ``node.p2p_wire`` (identity, addresses, framed streams), ``node.p2p_discovery``
(directory, bootstrap, mDNS) and ``node.libp2p_patches`` (py-libp2p 0.8.1 work-arounds).

Usage::

    async with open_host(seed, ["/ip4/0.0.0.0/tcp/4001"], bootstrap, topics=[TOPIC]) as host:
        host.set_handler("/dnode/x/1.0.0", handler)      # handler(peer_id, bytes) -> bytes
        await host.publish(TOPIC, b"...")
        async for from_peer, data in host.subscribe(TOPIC): ...
        reply = await host.request(peer_id, "/dnode/x/1.0.0", b"...")
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import trio

from dnode.node.errors import P2PError, ProtocolNotServed, ProtocolViolation
from dnode.node.libp2p_patches import (
    _RPC_OVERHEAD,
    _build_libp2p_host,
    _check_ports_free,
    _guard_stream_handlers,
    _harden_pubsub,
    _LargeRpcQueues,
    _leaves,
)
from dnode.node.p2p_discovery import DIRECTORY_PROTOCOL, PeerDiscovery
from dnode.node.p2p_wire import (
    P2PStream,
    _ma,
    _parse_pid,
    _strip_p2p,
    keypair_from_seed,
    peer_id_from_seed,
)
from dnode.node.transport import (
    DEFAULT_MAX_FRAME,
    MAX_GOSSIP_SIZE,
    GossipMessage,
    RequestHandler,
    StreamHandler,
    TunnelResolver,
)
from dnode.node.tunnel import TUNNEL_PROTOCOL, SeatBinding, TunnelService

log = logging.getLogger("dnode.p2p")

RESERVED_PROTOCOLS = frozenset({DIRECTORY_PROTOCOL, TUNNEL_PROTOCOL})


__all__ = [
    "DIRECTORY_PROTOCOL",
    "P2PHost",
    "P2PStream",
    "keypair_from_seed",
    "open_host",
    "peer_id_from_seed",
]


# --------------------------------------------------------------------------------------
# the host


def _not_supported(e: BaseException) -> bool:
    """Whether a failed ``new_stream`` means the peer answered that it has no such protocol
    (multistream-select "na"), not that it could not be reached."""
    from libp2p.protocol_muxer.exceptions import (
        MultiselectClientError,
        ProtocolNotSupportedError,
    )

    cause = e.__cause__ or e
    if isinstance(cause, ProtocolNotSupportedError):
        return True
    return isinstance(cause, MultiselectClientError) and "not supported" in str(cause)


class P2PHost(PeerDiscovery):
    """A running libp2p node. Create with :func:`open_host`; see module docstring."""

    def __init__(
        self,
        host: Any,
        pubsub: Any,
        nursery: trio.Nursery,
        *,
        max_frame: int,
        read_timeout: float,
    ) -> None:
        self._host = host
        self._pubsub = pubsub
        self._nursery = nursery
        self.max_frame = max_frame
        self.read_timeout = read_timeout
        self._peer_id: str = host.get_id().to_base58()
        self._subs: dict[str, list[tuple[trio.MemorySendChannel[GossipMessage], bool]]] = {}
        self._backlog: dict[str, collections.deque[GossipMessage]] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self.set_handler(DIRECTORY_PROTOCOL, self._directory_handler, _internal=True)
        self._tunnels = TunnelService(self)

    # -- identity / addresses --------------------------------------------------------
    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def addrs(self) -> list[str]:
        return [str(a) for a in self._host.get_addrs()]

    @property
    def libp2p_host(self) -> Any:
        """The underlying py-libp2p ``IHost`` (escape hatch; avoid in daemon code)."""
        return self._host

    # -- gossip ------------------------------------------------------------------
    async def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_GOSSIP_SIZE:
            raise P2PError(
                f"gossip message of {len(data)} bytes exceeds {MAX_GOSSIP_SIZE}; use a stream"
            )
        try:
            await self._pubsub.publish(topic, bytes(data))
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"publish on {topic!r} failed: {e!r}") from e

    def subscribe(
        self, topic: str, *, include_self: bool = True, buffer: int = 256
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        """``async for from_peer, data in host.subscribe(topic)``.

        Returns a memory-channel receiver (``rx.close()`` stops this consumer); it ends
        (EndOfChannel) when the host shuts down.  Several local consumers may subscribe
        to one topic; each gets every message (one whose buffer is full loses messages,
        with a warning).  Our own publications are included unless ``include_self=False``.
        The gossipsub join of a new topic happens in the background; topics passed to
        ``open_host(topics=)`` are joined before bootstrap, and messages that arrive on
        them before the first consumer subscribes are replayed to it (up to 256).
        """
        send, recv = trio.open_memory_channel[GossipMessage](buffer)
        consumers = self._subs.get(topic)
        if consumers is None:
            consumers = self._subs[topic] = []
            self._nursery.start_soon(self._join_and_pump, topic)
        consumers.append((send, include_self))
        for item in list(self._backlog.pop(topic, ()))[-buffer:]:
            if include_self or item[0] != self._peer_id:
                send.send_nowait(item)
        return recv

    async def _join_and_pump(
        self, topic: str, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        from libp2p.peer.id import ID

        self._subs.setdefault(topic, [])
        try:
            sub = await self._pubsub.subscribe(topic)
        except Exception:
            log.exception("cannot join gossip topic %r", topic)
            for ch, _ in self._subs.pop(topic, []):
                ch.close()
            task_status.started()
            return
        log.debug("joined topic %r", topic)
        task_status.started()
        try:
            async for msg in sub:
                try:
                    sender = ID(msg.from_id).to_base58()
                except Exception:  # noqa: BLE001
                    continue
                item = (sender, bytes(msg.data))
                consumers = self._subs.get(topic, [])
                if not consumers:
                    self._backlog.setdefault(topic, collections.deque(maxlen=256)).append(item)
                    continue
                for entry in list(consumers):
                    ch, include_self = entry
                    if not include_self and sender == self._peer_id:
                        continue
                    try:
                        ch.send_nowait(item)
                    except trio.WouldBlock:
                        log.warning("subscriber of %r too slow; dropped a message", topic)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        consumers.remove(entry)
        finally:
            for ch, _ in self._subs.get(topic, []):
                ch.close()

    # -- request / response --------------------------------------------------------
    def set_handler(
        self, protocol_id: str, handler: RequestHandler, *, _internal: bool = False
    ) -> None:
        """Serve ``protocol_id``: ``handler(peer_id, request) -> response``."""
        if protocol_id in RESERVED_PROTOCOLS and not _internal:
            raise P2PError(f"protocol {protocol_id} is reserved")
        from libp2p.custom_types import TProtocol

        self._handlers[protocol_id] = handler

        async def on_stream(net_stream: Any) -> None:
            await self._serve_request(protocol_id, net_stream)

        self._host.set_stream_handler(TProtocol(protocol_id), on_stream)

    async def _serve_request(self, protocol_id: str, net_stream: Any) -> None:
        peer = net_stream.muxed_conn.peer_id.to_base58()
        stream = P2PStream(net_stream, peer)
        handler = self._handlers.get(protocol_id)
        try:
            if handler is None:
                raise P2PError(f"no handler for {protocol_id}")
            with trio.fail_after(self.read_timeout):
                request = await stream.read_frame(self.max_frame)
        except (ProtocolViolation, P2PError, trio.TooSlowError) as e:
            log.warning("%s from %s: dropped request: %r", protocol_id, peer, e)
            await stream.reset()
            return
        try:
            response = await handler(peer, request)
            if not isinstance(response, (bytes, bytearray, memoryview)):
                raise TypeError(f"handler returned {type(response).__name__}, not bytes")
            if len(response) > self.max_frame:
                raise ValueError(f"response of {len(response)} bytes > limit {self.max_frame}")
        except Exception:
            log.exception("%s handler failed on request from %s; stream reset", protocol_id, peer)
            await stream.reset()
            return
        try:
            with trio.fail_after(self.read_timeout):
                await stream.write_frame(bytes(response))
                await stream.close()
        except (P2PError, trio.TooSlowError) as e:
            log.info("%s: could not answer %s: %r", protocol_id, peer, e)
            await stream.reset()

    async def request(
        self, peer_id: str, protocol_id: str, data: bytes, *, timeout: float = 10.0
    ) -> bytes:
        """One request/response exchange over a fresh stream; P2PError on any failure."""
        if len(data) > self.max_frame:
            raise P2PError(f"request of {len(data)} bytes > limit {self.max_frame}")
        try:
            with trio.fail_after(timeout):
                stream = await self._open(peer_id, protocol_id)
                try:
                    await stream.write_frame(data)
                    await stream.close_write()
                    reply = await stream.read_frame(self.max_frame)
                except BaseException:
                    await stream.reset()
                    raise
                await stream.close()
                return reply
        except trio.TooSlowError:
            raise P2PError(
                f"request {protocol_id} to {peer_id} timed out after {timeout}s"
            ) from None
        except ProtocolViolation as e:
            raise P2PError(f"request {protocol_id} to {peer_id}: bad response: {e.detail}") from e
        except ProtocolNotServed:
            raise
        except P2PError as e:
            raise P2PError(f"request {protocol_id} to {peer_id} failed: {e}") from e

    # -- raw streams -------------------------------------------------------------
    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None:
        """Serve raw streams on ``protocol_id``: ``handler(peer_id, stream)``.

        The stream is closed when the handler returns and reset if it raises."""
        from libp2p.custom_types import TProtocol

        async def on_stream(net_stream: Any) -> None:
            peer = net_stream.muxed_conn.peer_id.to_base58()
            stream = P2PStream(net_stream, peer)
            try:
                await handler(peer, stream)
            except Exception:
                log.exception("%s stream handler failed (peer %s); stream reset", protocol_id, peer)
                await stream.reset()
                return
            except BaseException:
                await stream.reset()
                raise
            await stream.close()

        self._host.set_stream_handler(TProtocol(protocol_id), on_stream)

    async def open_stream(
        self, peer_id: str, protocol_id: str, *, timeout: float = 10.0
    ) -> P2PStream:
        try:
            with trio.fail_after(timeout):
                return await self._open(peer_id, protocol_id)
        except trio.TooSlowError:
            raise P2PError(f"opening {protocol_id} to {peer_id} timed out") from None

    async def _open(self, peer_id: str, protocol_id: str) -> P2PStream:
        from libp2p.custom_types import TProtocol

        pid = _parse_pid(peer_id)
        if pid == self._host.get_id():
            raise P2PError("cannot open a stream to ourselves")
        await self._ensure_connected(pid)
        try:
            net_stream = await self._host.new_stream(pid, [TProtocol(protocol_id)])
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001 - StreamFailure, SwarmException, ...
            if _not_supported(e):
                raise ProtocolNotServed(peer_id, protocol_id) from e
            raise P2PError(f"cannot open {protocol_id} to {peer_id}: {e}") from e
        return P2PStream(net_stream, peer_id)

    async def _ensure_connected(self, pid: Any) -> None:
        """Connect to ``pid`` if needed, asking the directory when no address is known."""
        from libp2p.peer.peerinfo import PeerInfo

        if self._host.get_network().get_connections(pid):
            return
        peer_id = pid.to_base58()
        addrs = self._peerstore_addrs(pid)
        if addrs:
            self._lift_dial_block(pid)
            try:
                await self._host.connect(PeerInfo(pid, addrs))
                return
            except trio.Cancelled:
                raise
            except Exception as e:  # noqa: BLE001
                log.info("dial %s at known addrs failed (%r); asking directory", peer_id, e)
        found = await self.find_peer(peer_id)
        if not found:
            raise P2PError(f"no known address for peer {peer_id}")
        self._lift_dial_block(pid)
        try:
            await self._host.connect(PeerInfo(pid, [_strip_p2p(_ma(a)) for a in found]))
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"cannot connect to {peer_id}: {e}") from e

    def _lift_dial_block(self, pid: Any) -> None:
        """Make the next dial of ``pid`` a real one. py-libp2p 0.8.1 refuses for 60 s to dial
        a peer whose every address failed once (its swarm's negative cache): a node that was
        down for a few seconds, then restarted, stayed unreachable for up to a minute to
        everyone who had tried it meanwhile (chaos runs, issue 15). Our callers pace their
        own retries (owner agents, tunnels, signature sends), so a dial they ask for goes
        out; libp2p's own background dials keep the cache."""
        unblock = getattr(self._host.get_network(), "unblock_peer", None)
        if unblock is not None:
            unblock(pid)

    # -- peers ---------------------------------------------------------------------
    def connected_peers(self) -> list[str]:
        return [p.to_base58() for p in self._host.get_connected_peers()]

    async def connect(self, multiaddr_str: str, *, timeout: float = 10.0) -> str:
        from libp2p.peer.peerinfo import info_from_p2p_addr

        try:
            info = info_from_p2p_addr(_ma(multiaddr_str))
        except P2PError:
            raise
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"{multiaddr_str!r} is not a /p2p/<id> multiaddr: {e}") from e
        if info.peer_id == self._host.get_id():
            raise P2PError("refusing to connect to ourselves")
        self._lift_dial_block(info.peer_id)
        try:
            with trio.fail_after(timeout):
                await self._host.connect(info)
        except trio.Cancelled:
            raise
        except trio.TooSlowError:
            raise P2PError(f"connect to {multiaddr_str} timed out") from None
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"connect to {multiaddr_str} failed: {e}") from e
        return info.peer_id.to_base58()

    # -- tunnels ---------------------------------------------------------------------
    def set_tunnel_target(
        self, key: str, resolver: TunnelResolver, binding: SeatBinding | None = None
    ) -> None:
        self._tunnels.set_target(key, resolver, binding)

    def remove_tunnel_target(self, key: str) -> None:
        self._tunnels.remove_target(key)


@asynccontextmanager
async def open_host(
    identity_seed: bytes,
    listen_addrs: Sequence[str],
    bootstrap: Sequence[str] = (),
    *,
    mdns: bool = False,
    topics: Sequence[str] = (),
    max_frame: int = DEFAULT_MAX_FRAME,
    read_timeout: float = 30.0,
    bootstrap_wait: float = 10.0,
    heartbeat_interval: int = 1,
    gossip_rate_limit: float = 1000.0,
    announce: Sequence[str] | None = None,
) -> AsyncIterator[P2PHost]:
    """Start a libp2p node; everything it runs is cancelled when the block exits.

    * ``identity_seed``: 32 bytes -> deterministic Ed25519 key and peer id.
    * ``listen_addrs``: e.g. ``["/ip4/127.0.0.1/tcp/0"]``; ``host.addrs`` reports the
      real ports.
    * ``bootstrap``: ``.../p2p/<id>`` multiaddrs; each is dialled in the background with
      exponential backoff (and re-dialled if the connection drops).  Entry waits up to
      ``bootstrap_wait`` seconds for each to connect or fail 3 times; failures are logged.
    * ``topics``: gossip topics joined before any bootstrap dial.
    * ``max_frame``: request/response frame limit; ``read_timeout``: per-frame read limit
      of served requests.
    * ``heartbeat_interval``: gossipsub heartbeat (mesh maintenance) in seconds.
    * ``gossip_rate_limit``: gossipsub drops more than this many messages/second per
      (forwarding peer, topic) -- py-libp2p's default of 10 is far too low for a relay.
    * ``announce``: advertise exactly these addrs (e.g. a public IP behind NAT with a
      forwarded port) instead of the listen addrs.

    Raises P2PError for a bad seed / multiaddr or a listen port already in use.
    """
    from libp2p.pubsub.gossipsub import (
        PROTOCOL_ID,
        PROTOCOL_ID_V11,
        PROTOCOL_ID_V12,
        GossipSub,
    )
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    maddrs = [_ma(a) for a in listen_addrs]
    _check_ports_free(maddrs)
    lhost = _build_libp2p_host(identity_seed, mdns, announce)
    gossipsub = GossipSub(
        protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_initial_delay=0.1,
        heartbeat_interval=heartbeat_interval,
        # adaptive gossip raises the heartbeat to >= 30-60 s when it thinks the
        # network is unhealthy (small networks look unhealthy) -> mesh never forms.
        adaptive_gossip_enabled=False,
        # IP-diversity "eclipse protection" is meaningless on one LAN / localhost.
        eclipse_protection_enabled=False,
        max_messages_per_topic_per_second=gossip_rate_limit,
    )
    pubsub = Pubsub(
        lhost, gossipsub, strict_signing=True, max_inbound_rpc_size=MAX_GOSSIP_SIZE + _RPC_OVERHEAD
    )
    pubsub.peer_queues = _LargeRpcQueues()
    _harden_pubsub(lhost, pubsub)
    _guard_stream_handlers(lhost)
    mdns_send, mdns_recv = trio.open_memory_channel[Any](64)
    mdns_handler = None
    body_exc: BaseException | None = None
    try:
        async with (
            lhost.run(listen_addrs=maddrs),
            background_trio_service(pubsub),
            background_trio_service(gossipsub),
        ):
            try:
                await pubsub.wait_until_ready()
                async with trio.open_nursery() as nursery:
                    host = P2PHost(
                        lhost, pubsub, nursery, max_frame=max_frame, read_timeout=read_timeout
                    )
                    for t in dict.fromkeys(topics):
                        await nursery.start(host._join_and_pump, t)
                    log.info("p2p host %s listening on %s", host.peer_id, host.addrs)
                    if mdns:
                        from libp2p.discovery.events.peerDiscovery import peerDiscovery

                        token = trio.lowlevel.current_trio_token()

                        def mdns_handler(info: Any) -> None:  # zeroconf thread
                            def put() -> None:
                                with suppress(trio.WouldBlock, trio.ClosedResourceError):
                                    mdns_send.send_nowait(info)

                            with suppress(trio.RunFinishedError):
                                token.run_sync_soon(put)

                        peerDiscovery.register_peer_discovered_handler(mdns_handler)
                        nursery.start_soon(host._mdns_connector, mdns_recv)
                    events = []
                    for addr in bootstrap:
                        ev = trio.Event()
                        events.append(ev)
                        nursery.start_soon(host._keep_bootstrap, addr, ev)
                    with trio.move_on_after(bootstrap_wait):
                        for ev in events:
                            await ev.wait()
                    try:
                        yield host
                    except BaseException as e:
                        body_exc = e
                        raise
                    finally:
                        nursery.cancel_scope.cancel()
            finally:
                # py-libp2p 0.8.1 leaves the listen socket and connection sockets open
                # when host.run() exits; close them while the swarm is still running.
                with trio.CancelScope(deadline=trio.current_time() + 5, shield=True):
                    await lhost.close()
    except BaseExceptionGroup as eg:
        # py-libp2p's and our nurseries wrap the body's exception in (nested)
        # exception groups; hand the caller back its own exception.
        if body_exc is not None and all(
            leaf is body_exc or isinstance(leaf, trio.Cancelled) for leaf in _leaves(eg)
        ):
            raise body_exc from None
        raise
    finally:
        if mdns_handler is not None:
            from libp2p.discovery.events.peerDiscovery import peerDiscovery

            peerDiscovery.unregister_peer_discovered_handler(mdns_handler)
        mdns_send.close()
