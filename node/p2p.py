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

Usage::

    async with open_host(seed, ["/ip4/0.0.0.0/tcp/4001"], bootstrap, topics=[TOPIC]) as host:
        host.set_handler("/dnode/x/1.0.0", handler)      # handler(peer_id, bytes) -> bytes
        await host.publish(TOPIC, b"...")
        async for from_peer, data in host.subscribe(TOPIC): ...
        reply = await host.request(peer_id, "/dnode/x/1.0.0", b"...")
"""

from __future__ import annotations

import collections
import json
import logging
import random
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import multiaddr
import trio

from node.errors import P2PError, ProtocolViolation
from node.transport import (
    DEFAULT_MAX_FRAME,
    MAX_GOSSIP_SIZE,
    GossipMessage,
    RequestHandler,
    StreamHandler,
    TunnelResolver,
)
from node.tunnel import TUNNEL_PROTOCOL, SeatBinding, TunnelService

log = logging.getLogger("dnode.p2p")

DIRECTORY_PROTOCOL = "/dnode/directory/1.0.0"
RESERVED_PROTOCOLS = frozenset({DIRECTORY_PROTOCOL, TUNNEL_PROTOCOL})

# Directory limits.
MAX_DIRECTORY_QUERY = 256
MAX_ADDRS_PER_PEER = 32
# TTL (seconds) of addresses learned through the directory or connect().
LEARNED_ADDR_TTL = 3600

# Headroom of the pubsub RPC size limit over MAX_GOSSIP_SIZE (signature, key, topic, seqno).
_RPC_OVERHEAD = 64 * 1024
_LEN = struct.Struct(">I")

__all__ = [
    "DIRECTORY_PROTOCOL",
    "P2PHost",
    "P2PStream",
    "keypair_from_seed",
    "open_host",
    "peer_id_from_seed",
]


# --------------------------------------------------------------------------------------
# identity


def keypair_from_seed(seed: bytes) -> Any:
    """Deterministic libp2p Ed25519 ``KeyPair`` from a 32-byte seed."""
    from libp2p.crypto.ed25519 import create_new_key_pair

    if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
        raise P2PError("identity seed must be exactly 32 bytes")
    return create_new_key_pair(bytes(seed))


def peer_id_from_seed(seed: bytes) -> str:
    """The base58 peer id a host started with ``seed`` will have."""
    from libp2p.peer.id import ID

    return ID.from_pubkey(keypair_from_seed(seed).public_key).to_base58()


def _parse_pid(peer_id: str) -> Any:
    from libp2p.peer.id import ID

    try:
        return ID.from_base58(peer_id)
    except Exception as e:  # noqa: BLE001 - base58 / multihash errors of all sorts
        raise P2PError(f"invalid peer id {peer_id!r}: {e}") from e


def _ma(addr: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(addr)
    except Exception as e:  # noqa: BLE001
        raise P2PError(f"invalid multiaddr {addr!r}: {e}") from e


def _strip_p2p(addr: multiaddr.Multiaddr) -> multiaddr.Multiaddr:
    s = str(addr)
    i = s.find("/p2p/")
    return multiaddr.Multiaddr(s[:i]) if i > 0 else addr


def _interface_ips() -> list[str]:
    try:
        import ifaddr

        ips = []
        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                if ip.is_IPv4 and isinstance(ip.ip, str):
                    ips.append(ip.ip)
        return ips or ["127.0.0.1"]
    except Exception:  # noqa: BLE001
        return ["127.0.0.1"]


def _expand_wildcards(addrs: list[multiaddr.Multiaddr]) -> list[multiaddr.Multiaddr]:
    """addrs_factory: replace /ip4/0.0.0.0 listen addrs by one addr per interface IP,
    so identify / the directory advertise dialable addresses."""
    out: list[multiaddr.Multiaddr] = []
    seen: set[str] = set()
    for a in addrs:
        s = str(a)
        if s.startswith("/ip4/0.0.0.0/"):
            rest = s[len("/ip4/0.0.0.0") :]
            cands = [f"/ip4/{ip}{rest}" for ip in _interface_ips()]
        else:
            cands = [s]
        for c in cands:
            if c not in seen:
                seen.add(c)
                out.append(multiaddr.Multiaddr(c))
    return out


# --------------------------------------------------------------------------------------
# streams and framing


class P2PStream:
    """:class:`node.transport.ByteStream` over a py-libp2p ``INetStream``."""

    def __init__(self, net_stream: Any, peer_id: str) -> None:
        self._s = net_stream
        self._peer_id = peer_id
        self._done = False

    @property
    def peer_id(self) -> str:
        return self._peer_id

    async def read(self, max_bytes: int = 65536) -> bytes:
        from libp2p.network.stream.exceptions import StreamEOF

        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        try:
            return await self._s.read(max_bytes)
        except StreamEOF:
            # py-libp2p 0.8.1 yamux drops a stream's bookkeeping when an RST arrives,
            # so a remote reset surfaces as EOF; tell them apart by the muxed stream flag.
            if getattr(getattr(self._s, "muxed_stream", None), "reset_received", False):
                raise P2PError(f"stream reset by {self._peer_id}") from None
            return b""
        except trio.Cancelled:
            raise
        except Exception as e:  # StreamReset, StreamError, muxer errors
            raise P2PError(f"stream from {self._peer_id} failed: {e!r}") from e

    async def read_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = await self.read(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ProtocolViolation(self._peer_id, f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    async def write(self, data: bytes) -> None:
        try:
            await self._s.write(bytes(data))
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"stream to {self._peer_id} failed: {e!r}") from e

    async def close_write(self) -> None:
        try:
            await self._s.close_write()
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"half-close to {self._peer_id} failed: {e!r}") from e

    async def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            await self._s.close()
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001
            log.debug("closing stream to %s: %r", self._peer_id, e)

    async def reset(self) -> None:
        if self._done:
            return
        self._done = True
        with trio.CancelScope(shield=True):
            try:
                await self._s.reset()
            except Exception as e:  # noqa: BLE001
                log.debug("resetting stream to %s: %r", self._peer_id, e)

    async def write_frame(self, payload: bytes) -> None:
        await self.write(_LEN.pack(len(payload)) + bytes(payload))

    async def read_frame(self, max_size: int) -> bytes:
        """One length-prefixed frame; ProtocolViolation if oversized or truncated."""
        (length,) = _LEN.unpack(await self.read_exactly(4))
        if length > max_size:
            raise ProtocolViolation(self._peer_id, f"frame of {length} bytes > limit {max_size}")
        return await self.read_exactly(length)


# --------------------------------------------------------------------------------------
# the host


class P2PHost:
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
        try:
            await self._host.connect(PeerInfo(pid, [_strip_p2p(_ma(a)) for a in found]))
        except trio.Cancelled:
            raise
        except Exception as e:  # noqa: BLE001
            raise P2PError(f"cannot connect to {peer_id}: {e}") from e

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

    def _peerstore_addrs(self, pid: Any) -> list[multiaddr.Multiaddr]:
        try:
            addrs = self._host.get_peerstore().addrs(pid)
        except Exception:  # noqa: BLE001 - PeerStoreError (unknown / expired)
            return []
        out, seen = [], set()
        for a in addrs:
            a = _strip_p2p(a)
            if str(a) not in seen:
                seen.add(str(a))
                out.append(a)
        return out

    def known_addrs(self, peer_id: str) -> list[str]:
        """Full multiaddrs (with ``/p2p/<id>``) this host knows for ``peer_id``."""
        pid = _parse_pid(peer_id)
        if pid == self._host.get_id():
            return self.addrs
        return [f"{a}/p2p/{peer_id}" for a in self._peerstore_addrs(pid)]

    async def find_peer(self, peer_id: str, timeout: float = 5.0) -> list[str]:
        """Ask every connected peer's directory for ``peer_id``'s addresses.

        Returns the union (full multiaddrs) and stores them in the peerstore; ``[]``
        if nobody knows (never raises for "not found")."""
        pid = _parse_pid(peer_id)
        if pid == self._host.get_id():
            return self.addrs
        query = json.dumps({"peers": [peer_id]}).encode()
        found: dict[str, None] = {}

        async def ask(other: str) -> None:
            try:
                raw = await self.request(other, DIRECTORY_PROTOCOL, query, timeout=timeout)
                answer = json.loads(raw)["addrs"].get(peer_id, [])
                for a in answer[:MAX_ADDRS_PER_PEER]:
                    if isinstance(a, str):
                        ma = _strip_p2p(_ma(a))
                        found.setdefault(f"{ma}/p2p/{peer_id}")
            except (P2PError, ValueError, KeyError, TypeError, AttributeError) as e:
                log.debug("directory query to %s for %s failed: %r", other, peer_id, e)

        with trio.move_on_after(timeout):
            async with trio.open_nursery() as n:
                for other in self.connected_peers():
                    if other != peer_id:
                        n.start_soon(ask, other)
        if found:
            self._host.get_peerstore().add_addrs(
                pid, [_strip_p2p(_ma(a)) for a in found], LEARNED_ADDR_TTL
            )
        log.debug("find_peer %s -> %s", peer_id, list(found))
        return list(found)

    async def _directory_handler(self, peer_id: str, request: bytes) -> bytes:
        try:
            wanted = json.loads(request)["peers"]
            if not isinstance(wanted, list) or len(wanted) > MAX_DIRECTORY_QUERY:
                raise ValueError("bad peers list")
        except (ValueError, KeyError, TypeError) as e:
            raise ProtocolViolation(peer_id, f"bad directory query: {e}") from e
        answer: dict[str, list[str]] = {}
        for p in wanted:
            if not isinstance(p, str):
                continue
            try:
                addrs = self.known_addrs(p)
            except P2PError:
                continue
            if addrs:
                answer[p] = addrs[:MAX_ADDRS_PER_PEER]
        return json.dumps({"addrs": answer}).encode()

    async def wait_for_peers(self, n: int, timeout: float = 10.0) -> None:
        """Wait until at least ``n`` peers are connected (P2PError on timeout)."""
        with trio.move_on_after(timeout):
            while len(self.connected_peers()) < n:
                await trio.sleep(0.05)
            return
        raise P2PError(f"only {len(self.connected_peers())} of {n} peers after {timeout}s")

    async def wait_for_topic_peers(self, topic: str, n: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``n`` gossip peers announced ``topic`` to us (P2PError on timeout).

        Publishing before that (or before the gossipsub mesh heartbeat grafted them)
        may reach nobody; this is the mesh warm-up barrier."""
        with trio.move_on_after(timeout):
            while len(self._pubsub.peer_topics.get(topic, ())) < n:
                await trio.sleep(0.05)
            return
        raise P2PError(f"fewer than {n} peers on topic {topic!r} after {timeout}s")

    # -- tunnels ---------------------------------------------------------------------
    def set_tunnel_target(
        self, key: str, resolver: TunnelResolver, binding: SeatBinding | None = None
    ) -> None:
        self._tunnels.set_target(key, resolver, binding)

    def remove_tunnel_target(self, key: str) -> None:
        self._tunnels.remove_target(key)

    # -- background: bootstrap / mdns -------------------------------------------------
    async def _keep_bootstrap(
        self, addr: str, first_done: trio.Event, *, max_backoff: float = 30.0
    ) -> None:
        """Dial ``addr`` with exponential backoff, and re-dial whenever it drops."""
        from libp2p.peer.peerinfo import info_from_p2p_addr

        try:
            pid = info_from_p2p_addr(_ma(addr)).peer_id
        except Exception as e:  # noqa: BLE001
            log.error("bootstrap address %r unusable: %r", addr, e)
            first_done.set()
            return
        if pid == self._host.get_id():
            first_done.set()
            return
        delay, failures = 0.25, 0
        while True:
            if self._host.get_network().get_connections(pid):
                first_done.set()
                delay, failures = 0.25, 0
                await trio.sleep(2.0)
                continue
            try:
                await self.connect(addr, timeout=10.0)
                log.info("connected to bootstrap %s", addr)
                continue
            except P2PError as e:
                failures += 1
                (log.warning if failures in (1, 5) or failures % 20 == 0 else log.debug)(
                    "bootstrap %s: attempt %d failed: %s", addr, failures, e
                )
                if failures >= 3:
                    first_done.set()  # don't hold up startup any longer
            await trio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, max_backoff)

    async def _mdns_connector(self, recv: trio.MemoryReceiveChannel[Any]) -> None:
        async with recv:
            async for info in recv:
                if info.peer_id == self._host.get_id():
                    continue
                if self._host.get_network().get_connections(info.peer_id):
                    continue
                try:
                    with trio.fail_after(10):
                        await self._host.connect(info)
                    log.info("mDNS: connected to %s", info.peer_id)
                except Exception as e:  # noqa: BLE001
                    log.info("mDNS: connecting to %s failed: %r", info.peer_id, e)


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
