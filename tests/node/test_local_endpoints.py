"""Issue 13, finding 2 (local side): the loopback ports of an MPC session -- tunnel forwarders
and the MPyC party's listening port -- serve only processes of the node's own user.

Another user is simulated by a forked child that drops to uid 65534 (needs root)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from functools import partial

import pytest
import trio

from dnode.node.mpc.executor import MpcJob, free_port, run_party
from dnode.node.mpc.sharing import field_modulus, share
from dnode.node.p2p import open_host
from dnode.node.tunnel import tunnel_forwarders

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")

NOBODY = 65534


def foreign_connect(port: int, payload: bytes, linger: float = 3.0) -> int:
    """Fork a child that, as another user, connects to 127.0.0.1:port and sends payload.
    Returns its pid; it exits after ``linger`` seconds or once the connection is closed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            s.sendall(payload)
            s.settimeout(linger)
            with contextlib.suppress(OSError):
                s.recv(1)
        finally:
            os._exit(0)
    return pid


def test_a_forwarder_refuses_another_local_user() -> None:
    async def main() -> None:
        local = ["/ip4/127.0.0.1/tcp/0"]
        accepted: list[bytes] = []

        async def server(tcp: trio.SocketStream) -> None:
            data = await tcp.receive_some(1024)
            accepted.append(data)
            await tcp.send_all(b"ok")

        async with (
            open_host(secrets.token_bytes(32), local) as a,
            open_host(secrets.token_bytes(32), local, a.addrs) as b,
            trio.open_nursery() as n,
        ):
            await b.wait_for_peers(1)
            (lst,) = await n.start(partial(trio.serve_tcp, host="127.0.0.1"), server, 0)
            port = lst.socket.getsockname()[1]

            async def resolve(peer_id: str, key: str):
                return ("127.0.0.1", port)

            a.set_tunnel_target("k", resolve)
            async with tunnel_forwarders(b, "k", {0: a.peer_id}, 1) as ports:
                child = foreign_connect(ports[0], b"as another user")
                await trio.to_thread.run_sync(os.waitpid, child, 0)  # closed on it at once
                assert accepted == []
                mine = await trio.open_tcp_stream("127.0.0.1", ports[0])
                await mine.send_all(b"as the node")
                with trio.fail_after(20):
                    assert await mine.receive_some(2) == b"ok"
                await mine.aclose()
            assert accepted == [b"as the node"]
            n.cancel_scope.cancel()

    t0 = time.monotonic()
    trio.run(main)
    assert time.monotonic() - t0 < 20  # the child was not kept waiting until its linger ran out


def test_an_mpyc_party_drops_another_users_connection() -> None:
    """Another user connects to party 1 first, announcing party 0; the real party 0 still gets
    its seat and the session computes."""
    m, t = 2, 0
    p = field_modulus(64)
    per_party = share([5, 6, 7], m, t, p)
    ports = [free_port(), free_port()]
    jobs = [
        MpcJob(9, "mpc.sum", "int", 0, 64, i, [("127.0.0.1", q) for q in ports], t, [per_party[i]])
        for i in range(m)
    ]

    async def main() -> list[int]:
        listening = trio.Event()
        sums: list[int] = [0, 0]

        async def one(i: int, ev: trio.Event | None) -> None:
            sums[i] = (await run_party(jobs[i], timeout=40, listening=ev)).sum

        async with trio.open_nursery() as n:
            n.start_soon(one, 1, listening)
            await listening.wait()
            child = foreign_connect(ports[1], (0).to_bytes(2, "little") + bytes(16))  # + PRSS key
            await trio.sleep(1.0)  # the squatter is connected before party 0
            n.start_soon(one, 0, None)
        await trio.to_thread.run_sync(os.waitpid, child, 0)
        return sums

    assert trio.run(main) == [18, 18]
