"""Tunnels deliver every byte when a local program exits abruptly (MPyC parties do).

Losing the last message of an exiting MPyC party leaves its peers waiting until the session
times out, so these check: bytes written before an RST still arrive, and leaving
``tunnel_forwarders`` right after our local program finished does not cut its data off.
"""

from __future__ import annotations

import secrets
import socket
import struct
from functools import partial

import trio

from dnode.node.errors import P2PError
from dnode.node.p2p import open_host
from dnode.node.tunnel import tunnel_forwarders

KEY = "test:close"
PAYLOAD = secrets.token_bytes(3 * 1024 * 1024)


async def _read_all(stream: trio.SocketStream) -> bytes:
    got = bytearray()
    while chunk := await stream.receive_some(65536):
        got += chunk
    return bytes(got)


def _rst_close(stream: trio.SocketStream) -> None:
    """Close so the kernel sends RST (as a process exiting with unread input does)."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


async def _pair(fn):  # two real hosts over loopback TCP + Noise + yamux
    local = ["/ip4/127.0.0.1/tcp/0"]
    async with open_host(secrets.token_bytes(32), local) as a:  # noqa: SIM117
        async with open_host(secrets.token_bytes(32), local, a.addrs) as b:
            await b.wait_for_peers(1)
            await fn(a, b)


def test_bytes_sent_before_a_reset_arrive() -> None:
    async def scenario(a, b) -> None:
        async def server(tcp: trio.SocketStream) -> None:
            await trio.sleep(0.2)  # let the client's bytes arrive and stay unread
            await tcp.send_all(PAYLOAD)
            _rst_close(tcp)

        async with trio.open_nursery() as n:
            (listener,) = await n.start(partial(trio.serve_tcp, host="127.0.0.1"), server, 0)
            port = listener.socket.getsockname()[1]

            async def resolve(peer_id: str, key: str):
                return ("127.0.0.1", port) if peer_id == b.peer_id else None

            a.set_tunnel_target(KEY, resolve)
            async with tunnel_forwarders(b, KEY, {0: a.peer_id}, 1) as ports:
                client = await trio.open_tcp_stream("127.0.0.1", ports[0])
                await client.send_all(b"x" * 100_000)  # never read by the server
                with trio.fail_after(30):
                    assert await _read_all(client) == PAYLOAD
            n.cancel_scope.cancel()

    trio.run(_pair, scenario)


def test_leaving_the_forwarders_lets_in_flight_data_finish() -> None:
    async def scenario(a, b) -> None:
        received = trio.Event()
        got: list[bytes] = []

        async def server(tcp: trio.SocketStream) -> None:
            got.append(await _read_all(tcp))
            received.set()

        async with trio.open_nursery() as n:
            (listener,) = await n.start(partial(trio.serve_tcp, host="127.0.0.1"), server, 0)
            port = listener.socket.getsockname()[1]

            async def resolve(peer_id: str, key: str):
                return ("127.0.0.1", port)

            a.set_tunnel_target(KEY, resolve)
            async with tunnel_forwarders(b, KEY, {0: a.peer_id}, 1) as ports:
                client = await trio.open_tcp_stream("127.0.0.1", ports[0])
                await client.send_all(PAYLOAD)
                await client.aclose()  # our "party" is done; we leave at once
            with trio.fail_after(30):
                await received.wait()
            assert got == [PAYLOAD]
            n.cancel_scope.cancel()

    trio.run(_pair, scenario)


class _Flaky:
    """Host ``b`` whose first ``fails`` stream opens fail (a busy peer that answers
    multistream-select late), delegating everything else."""

    def __init__(self, host, fails: int) -> None:
        self._host, self.fails = host, fails

    def __getattr__(self, name):
        return getattr(self._host, name)

    async def open_stream(self, peer_id: str, protocol_id: str, *, timeout: float = 10.0):
        if self.fails:
            self.fails -= 1
            raise P2PError(f"cannot open {protocol_id} to {peer_id}: response timed out")
        return await self._host.open_stream(peer_id, protocol_id, timeout=timeout)


def test_a_failed_stream_open_is_retried_without_dropping_the_local_connection() -> None:
    """Regression (chaos runs): one slow negotiation closed the MPyC party's socket, and the
    party's session died ("Connection reset by peer", then "computation stalled")."""

    async def scenario(a, b) -> None:
        async def echo(tcp: trio.SocketStream) -> None:
            await tcp.send_all(await _read_all(tcp))
            await tcp.send_eof()

        async with trio.open_nursery() as n:
            (listener,) = await n.start(partial(trio.serve_tcp, host="127.0.0.1"), echo, 0)
            port = listener.socket.getsockname()[1]

            async def resolve(peer_id: str, key: str):
                return ("127.0.0.1", port)

            a.set_tunnel_target(KEY, resolve)
            flaky = _Flaky(b, fails=2)
            async with tunnel_forwarders(flaky, KEY, {0: a.peer_id}, 1) as ports:
                client = await trio.open_tcp_stream("127.0.0.1", ports[0])
                await client.send_all(b"hello party")
                await client.send_eof()
                with trio.fail_after(30):
                    assert await _read_all(client) == b"hello party"
            assert flaky.fails == 0
            n.cancel_scope.cancel()

    trio.run(_pair, scenario)
