"""libp2p identity, addresses and framed streams (used by ``node.p2p``)."""

from __future__ import annotations

import logging
import struct
from typing import Any

import multiaddr
import trio

from dnode.node.errors import P2PError, ProtocolViolation

log = logging.getLogger("dnode.p2p")

_LEN = struct.Struct(">I")


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
