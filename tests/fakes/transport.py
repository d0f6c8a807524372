"""An in-memory ``node.transport.Transport``: peers on one ``FakeNetwork`` reach each other's
request handlers and gossip directly (no libp2p, no sockets, no processes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from dnode.node.errors import P2PError, ProtocolNotServed
from dnode.node.transport import ByteStream, GossipMessage, RequestHandler, TunnelResolver


class FakeNetwork:
    def __init__(self) -> None:
        self.peers: dict[str, FakeTransport] = {}

    def host(self, peer_id: str) -> FakeTransport:
        t = self.peers[peer_id] = FakeTransport(self, peer_id)
        return t


class FakeTransport:
    def __init__(self, net: FakeNetwork, peer_id: str) -> None:
        self.net = net
        self._peer_id = peer_id
        self.handlers: dict[str, RequestHandler] = {}
        self.subscribers: dict[str, list[trio.MemorySendChannel[GossipMessage]]] = {}
        self.published: list[tuple[str, bytes]] = []
        self.tunnels: dict[str, TunnelResolver] = {}
        self.down = False  # a peer that is down: requests to it fail like a dead connection

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def addrs(self) -> list[str]:
        return [f"/memory/{self._peer_id}/p2p/{self._peer_id}"]

    async def publish(self, topic: str, data: bytes) -> None:
        self.published.append((topic, data))
        for peer in self.net.peers.values():
            if peer is self or peer.down:
                continue
            for ch in peer.subscribers.get(topic, []):
                await ch.send((self._peer_id, data))

    def subscribe(
        self, topic: str, *, include_self: bool = True
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        send, recv = trio.open_memory_channel[GossipMessage](100)
        self.subscribers.setdefault(topic, []).append(send)
        return recv

    def set_handler(self, protocol_id: str, handler: RequestHandler) -> None:
        self.handlers[protocol_id] = handler

    async def request(
        self, peer_id: str, protocol_id: str, data: bytes, *, timeout: float = 10.0
    ) -> bytes:
        peer = self.net.peers.get(peer_id)
        if peer is None or peer.down:
            raise P2PError(f"cannot reach {peer_id} on {protocol_id}")
        if protocol_id not in peer.handlers:
            raise ProtocolNotServed(peer_id, protocol_id)
        try:
            with trio.fail_after(timeout):
                return await peer.handlers[protocol_id](self._peer_id, data)
        except trio.TooSlowError:
            raise P2PError(f"{protocol_id} to {peer_id} timed out") from None

    def set_stream_handler(
        self, protocol_id: str, handler: Callable[[str, ByteStream], Awaitable[None]]
    ) -> None:
        pass  # raw streams (tunnels, blobs) are not part of the fake

    async def open_stream(
        self, peer_id: str, protocol_id: str, *, timeout: float = 10.0
    ) -> ByteStream:
        raise P2PError("the fake transport has no raw streams")

    def connected_peers(self) -> list[str]:
        return [p for p, t in self.net.peers.items() if p != self._peer_id and not t.down]

    async def connect(self, multiaddr: str, *, timeout: float = 10.0) -> str:
        return multiaddr.rsplit("/", 1)[-1]

    def known_addrs(self, peer_id: str) -> list[str]:
        return self.net.peers[peer_id].addrs if peer_id in self.net.peers else []

    async def find_peer(self, peer_id: str, timeout: float = 5.0) -> list[str]:
        return self.known_addrs(peer_id)

    def set_tunnel_target(self, key: str, resolver: TunnelResolver) -> None:
        self.tunnels[key] = resolver

    def remove_tunnel_target(self, key: str) -> None:
        self.tunnels.pop(key, None)
