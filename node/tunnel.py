"""TCP-over-libp2p tunnels: local TCP programs (MPyC parties) talk through
authenticated libp2p streams.

Wire protocol on ``/dnode/tunnel/1.0.0`` (one stream per TCP connection):

1. dialer -> listener: header frame = 4-byte big-endian length + UTF-8 JSON
   ``{"key": "<key>", "index": <dialer's party index>}`` (at most 4 KiB);
2. listener asks the resolver registered for ``key`` whether the (Noise-authenticated)
   dialing peer may tunnel for it; on refusal / unknown key / resolver error /
   unreachable local target the stream is **reset** (and a log line written);
3. otherwise the listener connects to the resolved local (host, port) (retrying
   refusals for up to 30 s: the local program may still be starting) and answers one
   byte ``0x01`` (accepted); from then on raw bytes are piped both ways.

Seat binding (for MPyC sessions, see :class:`SeatBinding`): a target registered with a
binding admits a stream only if the Noise-authenticated dialer holds the seat its header
claims (``binding.seats[index] == peer_id``), only one stream per seat and local target
(MPyC lets a later connection silently replace an earlier one), and only if the first two
bytes piped are that same index (MPyC's client announces its party id there, little-endian):
the party id the local MPyC server sees is the one the tunnel authenticated.

EOF is propagated as a half-close in each direction (TCP ``shutdown(SHUT_WR)`` <->
yamux FIN); an error on either side resets the stream and closes the socket.

Dialer side::

    async with tunnel_forwarders(host, "task:7", {1: peer_b, 2: peer_c}, local_index=0) as ports:
        # ports == {1: 40123, 2: 40124}: connect to 127.0.0.1:ports[i] to reach party i
        ...

Listener side::

    async def resolver(peer_id: str, key: str) -> tuple[str, int] | None:
        return ("127.0.0.1", mpyc_port) if peer_id in committee else None
    host.set_tunnel_target("task:7", resolver)
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

import trio

from dnode.node.errors import P2PError, ProtocolViolation
from dnode.node.localpeer import same_user
from dnode.node.transport import ByteStream, SeatBinding, Transport, TunnelResolver

log = logging.getLogger("dnode.tunnel")

TUNNEL_PROTOCOL = "/dnode/tunnel/1.0.0"
MAX_HEADER = 4096
ACCEPT = b"\x01"
CHUNK = 64 * 1024
DRAIN_GRACE = 10.0  # seconds open tunnels may finish after their session ended
HEADER_TIMEOUT = 10.0
UNKNOWN_KEY_WAIT = 60.0  # seconds an incoming tunnel waits for its key to be registered
LOCAL_CONNECT_TIMEOUT = 30.0
OPEN_TIMEOUT = 15.0
OPEN_RETRY_WINDOW = 60.0  # seconds a dialer keeps retrying to open its stream
# The listener's resolver may legitimately wait (e.g. until its MPC party is up)
# before accepting; the dialer waits a bit longer than the listener lets it.
RESOLVE_TIMEOUT = 110.0
ACCEPT_TIMEOUT = 210.0  # > UNKNOWN_KEY_WAIT + RESOLVE_TIMEOUT + LOCAL_CONNECT_TIMEOUT

# A resolver registered under this key is consulted for keys without their own resolver.
ANY_KEY = "*"


def encode_header(key: str, index: int) -> bytes:
    body = json.dumps({"key": key, "index": int(index)}, separators=(",", ":")).encode()
    if len(body) > MAX_HEADER:
        raise P2PError(f"tunnel key too long ({len(body)} bytes)")
    return struct.pack(">I", len(body)) + body


async def _read_exactly(stream: ByteStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def read_header(stream: ByteStream) -> tuple[str, int]:
    """Parse a tunnel header; raises ProtocolViolation / EOFError / P2PError."""
    (length,) = struct.unpack(">I", await _read_exactly(stream, 4))
    if length > MAX_HEADER:
        raise ProtocolViolation(stream.peer_id, f"tunnel header of {length} bytes")
    try:
        obj = json.loads(await _read_exactly(stream, length))
        key, index = obj["key"], obj["index"]
        if not isinstance(key, str) or not isinstance(index, int) or isinstance(index, bool):
            raise TypeError("bad field types")
    except (ValueError, KeyError, TypeError) as e:
        raise ProtocolViolation(stream.peer_id, f"malformed tunnel header: {e}") from e
    return key, index


async def _quiet_reset(stream: ByteStream) -> None:
    with trio.CancelScope(shield=True), suppress(Exception):
        await stream.reset()


async def pipe(tcp: trio.SocketStream, stream: ByteStream, label: str) -> None:
    """Copy bytes both ways until both directions reached EOF (or one side failed).

    Closes the socket in all cases; closes the stream on a clean finish and resets it
    on error or cancellation.
    """
    sent = received = 0

    async def tcp_to_stream() -> None:
        nonlocal sent
        while True:
            try:
                data = await tcp.receive_some(CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                # the local program went away (e.g. exited with unread input: RST). What it
                # sent before is already on the stream; a reset could discard it in flight,
                # so end our direction cleanly instead.
                data = b""
            if not data:
                await stream.close_write()
                return
            await stream.write(data)
            sent += len(data)

    async def stream_to_tcp() -> None:
        nonlocal received
        local_open = True
        while True:
            data = await stream.read(CHUNK)
            if not data:
                if local_open:
                    with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await tcp.send_eof()
                return
            received += len(data)
            if local_open:
                try:
                    await tcp.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    local_open = False  # nobody left to read: drain until the remote ends

    clean = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tcp_to_stream)
            nursery.start_soon(stream_to_tcp)
        clean = True
    except Exception as e:  # noqa: BLE001 - includes ExceptionGroup of I/O errors
        log.info("tunnel %s aborted after %d/%d bytes out/in: %r", label, sent, received, e)
    finally:
        if clean:
            log.debug("tunnel %s closed cleanly (%d/%d bytes out/in)", label, sent, received)
            with trio.CancelScope(shield=True), suppress(Exception):
                await stream.close()
        else:
            await _quiet_reset(stream)
        with trio.CancelScope(shield=True):
            await tcp.aclose()


async def _connect_local(host: str, port: int) -> trio.SocketStream:
    """Connect to the local target, retrying refusals for a while: the local program
    (an MPyC party being started) may not be listening yet when the resolver answers."""
    delay = 0.05
    with trio.fail_after(LOCAL_CONNECT_TIMEOUT):
        while True:
            try:
                return await trio.open_tcp_stream(host, port)
            except OSError:
                await trio.sleep(delay)
                delay = min(delay * 2, 0.5)


class TunnelService:
    """Listener side: serves ``/dnode/tunnel/1.0.0`` streams on a host."""

    def __init__(self, host: Transport) -> None:
        self._host = host
        self._targets: dict[str, TunnelResolver] = {}
        self._bindings: dict[str, SeatBinding] = {}
        # (key, index, local target) of every bound stream admitted: one per seat and target
        self._admitted: set[tuple[str, int, tuple[str, int]]] = set()
        self._awaited: dict[str, trio.Event] = {}
        host.set_stream_handler(TUNNEL_PROTOCOL, self._handle)

    def set_target(
        self, key: str, resolver: TunnelResolver, binding: SeatBinding | None = None
    ) -> None:
        """Serve ``key`` via ``resolver``; with a ``binding`` only seat holders get in."""
        self._targets[key] = resolver
        if binding is not None:
            self._bindings[key] = binding
        else:
            self._bindings.pop(key, None)
        ev = self._awaited.pop(key, None)
        if ev is not None:
            ev.set()

    async def _resolver_for(self, key: str) -> TunnelResolver | None:
        """A peer may dial before this node has learnt of the session (it saw the chain event
        first); MPyC never redials a dropped connection, so wait a while instead of refusing."""
        resolver = self._targets.get(key) or self._targets.get(ANY_KEY)
        if resolver is None:
            ev = self._awaited.setdefault(key, trio.Event())
            with trio.move_on_after(UNKNOWN_KEY_WAIT):
                await ev.wait()
            resolver = self._targets.get(key)
        return resolver

    def remove_target(self, key: str) -> None:
        self._targets.pop(key, None)
        self._bindings.pop(key, None)
        self._admitted = {a for a in self._admitted if a[0] != key}

    async def _check_pid(self, stream: ByteStream, index: int) -> bytes | None:
        """The first two piped bytes (MPyC's party id) must be the authenticated seat."""
        try:
            with trio.fail_after(HEADER_TIMEOUT):
                pid = await _read_exactly(stream, 2)
        except (EOFError, P2PError, trio.TooSlowError):
            return None
        return pid if int.from_bytes(pid, "little") == index else None

    async def _handle(self, peer_id: str, stream: ByteStream) -> None:
        try:
            with trio.fail_after(HEADER_TIMEOUT):
                key, index = await read_header(stream)
        except (ProtocolViolation, EOFError, P2PError, trio.TooSlowError) as e:
            log.warning("tunnel from %s: bad header (%r); reset", peer_id, e)
            await _quiet_reset(stream)
            return
        resolver = await self._resolver_for(key)
        binding = self._bindings.get(key)
        if binding is not None and not binding.holds(peer_id, index):
            log.warning(
                "tunnel refused: peer %s does not hold seat %d of %r; reset", peer_id, index, key
            )
            await _quiet_reset(stream)
            return
        target = None
        if resolver is not None:
            try:
                with trio.fail_after(RESOLVE_TIMEOUT):
                    target = await resolver(peer_id, key)
            except trio.TooSlowError:
                log.warning("tunnel resolver for key %r timed out (peer %s)", key, peer_id)
                target = None
            except Exception:
                log.exception("tunnel resolver for key %r raised (peer %s)", key, peer_id)
                target = None
        if target is None:
            log.warning(
                "tunnel refused: peer %s (party %d) key %r%s; reset",
                peer_id,
                index,
                key,
                "" if resolver else " (no such key)",
            )
            await _quiet_reset(stream)
            return
        host, port = target
        if binding is not None:
            if (key, index, (host, port)) in self._admitted:
                log.warning(
                    "tunnel refused: seat %d of %r is already connected (peer %s); reset",
                    index,
                    key,
                    peer_id,
                )
                await _quiet_reset(stream)
                return
            self._admitted.add((key, index, (host, port)))
        try:
            tcp = await _connect_local(host, port)
            if not same_user(tcp.socket):  # the port was taken by another local user
                await tcp.aclose()
                raise OSError(f"{host}:{port} is served by another user")
        except (OSError, trio.TooSlowError) as e:
            log.warning(
                "tunnel %r from %s: local target %s:%s unreachable (%r); reset",
                key,
                peer_id,
                host,
                port,
                e,
            )
            await _quiet_reset(stream)
            return
        try:
            await stream.write(ACCEPT)
        except Exception as e:  # noqa: BLE001
            log.info("tunnel %r from %s: accept failed (%r)", key, peer_id, e)
            await _quiet_reset(stream)
            with trio.CancelScope(shield=True):
                await tcp.aclose()
            return
        if binding is not None and binding.pid_prefix:
            pid = await self._check_pid(stream, index)
            if pid is None:
                log.warning(
                    "tunnel %r: peer %s (seat %d) announced another party id; reset",
                    key,
                    peer_id,
                    index,
                )
                await _quiet_reset(stream)
                with trio.CancelScope(shield=True):
                    await tcp.aclose()
                return
            try:
                await tcp.send_all(pid)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await _quiet_reset(stream)
                return
        log.info("tunnel %r: party %d (%s) -> %s:%s", key, index, peer_id, host, port)
        await pipe(tcp, stream, f"{key} party {index} <- {peer_id[:12]}")


async def _open_with_retries(
    host: Transport, peer_id: str, header: bytes, label: str
) -> ByteStream:
    """Open the stream and send the header, retrying for up to OPEN_RETRY_WINDOW s.

    The local program (an MPyC party) already holds a connected socket: closing it because one
    stream negotiation timed out (a busy peer answers multistream-select late) kills its
    session, while waiting a little costs nothing. Only failures before the listener could
    admit the stream are retried (the header is not yet known to it)."""
    deadline = trio.current_time() + OPEN_RETRY_WINDOW
    delay = 0.5
    while True:
        stream: ByteStream | None = None
        try:
            with trio.fail_after(OPEN_TIMEOUT):
                stream = await host.open_stream(peer_id, TUNNEL_PROTOCOL, timeout=OPEN_TIMEOUT)
                await stream.write(header)
            return stream
        except (P2PError, trio.TooSlowError) as e:
            if stream is not None:
                await _quiet_reset(stream)
            if trio.current_time() + delay >= deadline:
                raise
            log.info("tunnel %s: open failed (%r); retrying in %.1f s", label, e, delay)
        await trio.sleep(delay)
        delay = min(delay * 2, 4.0)


async def _forward_one(
    host: Transport, key: str, peer_id: str, index: int, local_index: int, tcp: trio.SocketStream
) -> None:
    label = f"{key} -> party {index} ({peer_id[:12]})"
    stream: ByteStream | None = None
    try:
        stream = await _open_with_retries(host, peer_id, encode_header(key, local_index), label)
        with trio.fail_after(ACCEPT_TIMEOUT):
            ack = await stream.read(1)
        if ack != ACCEPT:
            raise P2PError(f"tunnel not accepted (got {ack!r})")
    except (P2PError, trio.TooSlowError) as e:
        log.warning("tunnel %s: could not open (%r); closing local connection", label, e)
        if stream is not None:
            await _quiet_reset(stream)
        with trio.CancelScope(shield=True):
            await tcp.aclose()
        return
    except BaseException:
        if stream is not None:
            await _quiet_reset(stream)
        with trio.CancelScope(shield=True):
            await tcp.aclose()
        raise
    log.debug("tunnel %s open", label)
    await pipe(tcp, stream, label)


async def open_forwarders(
    nursery: trio.Nursery,
    host: Transport,
    key: str,
    peers: Mapping[int, str],
    local_index: int,
    serving: set[trio.SocketListener] | None = None,
) -> dict[int, int]:
    """Bind one 127.0.0.1:0 listener per remote party and serve it in ``nursery``.

    Returns ``{party_index: local_port}``.  Every TCP connection accepted on a
    listener opens a tunnel stream to that party's peer (header: key, local_index)
    and pipes bytes both ways.  Cancelling ``nursery`` closes listeners and tunnels.
    """
    ports: dict[int, int] = {}
    listeners: list[trio.SocketListener] = []
    try:
        for index, _peer_id in sorted(peers.items()):
            (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
            listeners.append(listener)
            ports[index] = listener.socket.getsockname()[1]
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    for (index, peer_id), listener in zip(sorted(peers.items()), listeners, strict=True):
        nursery.start_soon(
            _serve_listener, host, key, peer_id, index, local_index, listener, serving
        )
    log.info("tunnel forwarders for %r (local party %d): %s", key, local_index, ports)
    return ports


async def _serve_listener(
    host: Transport,
    key: str,
    peer_id: str,
    index: int,
    local_index: int,
    listener: trio.SocketListener,
    serving: set[trio.SocketListener] | None = None,
) -> None:
    if serving is not None:
        serving.add(listener)
    async with listener, trio.open_nursery() as conns:
        while True:
            try:
                tcp = await listener.accept()
            except trio.ClosedResourceError:
                return  # closed by tunnel_forwarders: the open tunnels finish in `conns`
            except OSError as e:
                log.warning("tunnel %r listener for party %d stopped: %r", key, index, e)
                return
            if not same_user(tcp.socket):  # another local user: it must not speak as our seat
                log.warning("tunnel %r: refused a local connection of another user", key)
                await tcp.aclose()
                continue
            conns.start_soon(_forward_one, host, key, peer_id, index, local_index, tcp)


@asynccontextmanager
async def tunnel_forwarders(
    host: Transport, key: str, peers: Mapping[int, str], local_index: int
) -> AsyncIterator[dict[int, int]]:
    """Context-managed :func:`open_forwarders`: yields ``{party_index: local_port}``.

    Leaving the block normally stops accepting and lets open tunnels finish for up to
    DRAIN_GRACE seconds (our party may exit while its last bytes are still on the way to
    the others; cancelling would reset those streams and strand the peers). Leaving with
    an error or a cancellation closes everything at once."""
    serving: set[trio.SocketListener] = set()
    async with trio.open_nursery() as nursery:
        ports = await open_forwarders(nursery, host, key, peers, local_index, serving)
        try:
            yield ports
        except BaseException:
            nursery.cancel_scope.cancel()
            raise
        nursery.cancel_scope.deadline = trio.current_time() + DRAIN_GRACE
        for listener in serving:
            await listener.aclose()
