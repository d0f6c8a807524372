"""Finding peers: the address directory protocol, bootstrap re-dialing, mDNS (``node.p2p``)."""

from __future__ import annotations

import json
import logging
import random
from typing import Any, Protocol

import multiaddr
import trio

from dnode.node.errors import P2PError, ProtocolViolation
from dnode.node.p2p_wire import _ma, _parse_pid, _strip_p2p

log = logging.getLogger("dnode.p2p")

DIRECTORY_PROTOCOL = "/dnode/directory/1.0.0"
# Directory limits.
MAX_DIRECTORY_QUERY = 256
MAX_ADDRS_PER_PEER = 32
# TTL (seconds) of addresses learned through the directory or connect().
LEARNED_ADDR_TTL = 3600


class _Host(Protocol):
    """What the discovery methods use of ``node.p2p.P2PHost``."""

    _host: Any
    _pubsub: Any

    @property
    def addrs(self) -> list[str]: ...

    def connected_peers(self) -> list[str]: ...

    def known_addrs(self, peer_id: str) -> list[str]: ...

    def _peerstore_addrs(self, pid: Any) -> list[multiaddr.Multiaddr]: ...

    async def request(
        self, peer_id: str, protocol_id: str, data: bytes, *, timeout: float = 10.0
    ) -> bytes: ...

    async def connect(self, multiaddr_str: str, *, timeout: float = 10.0) -> str: ...


class PeerDiscovery:
    """Mixed into ``P2PHost``: the directory, peer waits and background dialing."""

    def _peerstore_addrs(self: _Host, pid: Any) -> list[multiaddr.Multiaddr]:
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

    def known_addrs(self: _Host, peer_id: str) -> list[str]:
        """Full multiaddrs (with ``/p2p/<id>``) this host knows for ``peer_id``."""
        pid = _parse_pid(peer_id)
        if pid == self._host.get_id():
            return self.addrs
        return [f"{a}/p2p/{peer_id}" for a in self._peerstore_addrs(pid)]

    async def find_peer(self: _Host, peer_id: str, timeout: float = 5.0) -> list[str]:
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

    async def _directory_handler(self: _Host, peer_id: str, request: bytes) -> bytes:
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

    async def wait_for_peers(self: _Host, n: int, timeout: float = 10.0) -> None:
        """Wait until at least ``n`` peers are connected (P2PError on timeout)."""
        with trio.move_on_after(timeout):
            while len(self.connected_peers()) < n:
                await trio.sleep(0.05)
            return
        raise P2PError(f"only {len(self.connected_peers())} of {n} peers after {timeout}s")

    async def wait_for_topic_peers(
        self: _Host, topic: str, n: int = 1, timeout: float = 10.0
    ) -> None:
        """Wait until ``n`` gossip peers announced ``topic`` to us (P2PError on timeout).

        Publishing before that (or before the gossipsub mesh heartbeat grafted them)
        may reach nobody; this is the mesh warm-up barrier."""
        with trio.move_on_after(timeout):
            while len(self._pubsub.peer_topics.get(topic, ())) < n:
                await trio.sleep(0.05)
            return
        raise P2PError(f"fewer than {n} peers on topic {topic!r} after {timeout}s")

    async def _keep_bootstrap(
        self: _Host, addr: str, first_done: trio.Event, *, max_backoff: float = 30.0
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

    async def _mdns_connector(self: _Host, recv: trio.MemoryReceiveChannel[Any]) -> None:
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
