"""The swappable network edge the node daemon depends on.

``node.p2p.P2PHost`` (py-libp2p: Noise/TCP/yamux, gossipsub, direct streams) is the
real implementation; tests of the daemon may substitute an in-memory fake that
satisfies :class:`Transport`.  ``node.tunnel`` is written against this interface
only (``open_stream`` / ``set_stream_handler``), so tunnels work over any
``Transport``.

Conventions shared by every implementation:

* peer ids are base58 strings, multiaddrs are strings;
* every failure of a network operation raises :class:`node.errors.P2PError`;
* handlers never crash the host: an exception in a handler is logged and the
  stream reset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import trio


@dataclass(frozen=True)
class SeatBinding:
    """Who may tunnel in under a key: ``seats`` maps a party index to the peer id holding it
    (for MPyC: the lower seats, which connect to us).  ``pid_prefix``: the stream starts with
    the dialer's 2-byte little-endian party id, which must equal its authenticated seat."""

    seats: Mapping[int, str]
    pid_prefix: bool = True

    def holds(self, peer_id: str, index: int) -> bool:
        return self.seats.get(index) == peer_id


# A gossip message as delivered to subscribers: (originating peer id, payload).
GossipMessage = tuple[str, bytes]

# request/response: handler(peer_id, request) -> response
RequestHandler = Callable[[str, bytes], Awaitable[bytes]]

# tunnel authorization: resolver(peer_id, key) -> (host, port) to connect to, or None to refuse
TunnelResolver = Callable[[str, str], Awaitable["tuple[str, int] | None"]]

# Largest gossip payload accepted by ``publish`` (bigger blobs go over streams).
MAX_GOSSIP_SIZE = 1024 * 1024
# Default largest request/response frame.
DEFAULT_MAX_FRAME = 16 * 1024 * 1024


@runtime_checkable
class ByteStream(Protocol):
    """A bidirectional, authenticated byte stream to one peer (a libp2p stream)."""

    @property
    def peer_id(self) -> str: ...

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` once the remote half-closed. P2PError on reset."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close_write(self) -> None:
        """Half-close: the remote reads EOF, we can keep reading."""
        ...

    async def close(self) -> None: ...

    async def reset(self) -> None:
        """Abort both directions (the remote sees a reset, not EOF)."""
        ...


StreamHandler = Callable[[str, ByteStream], Awaitable[None]]


@runtime_checkable
class Transport(Protocol):
    """What the node daemon needs from the peer-to-peer network."""

    @property
    def peer_id(self) -> str: ...

    @property
    def addrs(self) -> list[str]:
        """Full listen multiaddrs including ``/p2p/<peer_id>``."""
        ...

    # -- gossip ------------------------------------------------------------------
    async def publish(self, topic: str, data: bytes) -> None:
        """Gossip ``data`` on ``topic``; > MAX_GOSSIP_SIZE raises P2PError."""
        ...

    def subscribe(
        self, topic: str, *, include_self: bool = True
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        """``async for from_peer, data in transport.subscribe(topic)``; close the
        returned receiver to stop; it ends when the transport shuts down."""
        ...

    # -- request / response ----------------------------------------------------------
    def set_handler(self, protocol_id: str, handler: RequestHandler) -> None: ...

    async def request(
        self, peer_id: str, protocol_id: str, data: bytes, *, timeout: float = 10.0
    ) -> bytes: ...

    # -- raw streams (used by node.tunnel) ---------------------------------------------
    def set_stream_handler(self, protocol_id: str, handler: StreamHandler) -> None: ...

    async def open_stream(
        self, peer_id: str, protocol_id: str, *, timeout: float = 10.0
    ) -> ByteStream: ...

    # -- peers ---------------------------------------------------------------------
    def connected_peers(self) -> list[str]: ...

    async def connect(self, multiaddr: str, *, timeout: float = 10.0) -> str:
        """Dial a ``.../p2p/<id>`` multiaddr; returns the peer id."""
        ...

    def known_addrs(self, peer_id: str) -> list[str]: ...

    async def find_peer(self, peer_id: str, timeout: float = 5.0) -> list[str]: ...

    # -- tunnels ---------------------------------------------------------------------
    def set_tunnel_target(
        self, key: str, resolver: TunnelResolver, binding: SeatBinding | None = None
    ) -> None: ...

    def remove_tunnel_target(self, key: str) -> None: ...
