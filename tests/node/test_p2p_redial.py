"""A peer that restarts is reachable again at once (chaos runs, issue 15).

py-libp2p 0.8.1 puts a peer whose every address failed into a 60 s negative cache and refuses
to dial it again before that ("recently failed all addresses (negative cache)"). A node killed
and restarted a few seconds later was thus unreachable for up to a minute to everyone who had
tried it while it was down: in a chaos run the owner agents' share deliveries to a restarted
seat failed for 50 s, and the task ran out of time. Our callers pace their own retries, so a
dial they ask for is a real dial.
"""

from __future__ import annotations

import secrets

import trio

from dnode.node.errors import P2PError
from dnode.node.p2p import open_host

PROTO = "/test/ping/1.0.0"


async def _pong(peer: str, data: bytes) -> bytes:
    return b"pong:" + data


def test_a_restarted_peer_is_dialled_again_at_once() -> None:
    seed_a = secrets.token_bytes(32)
    got: dict[str, object] = {}

    async def main() -> None:
        local = ["/ip4/127.0.0.1/tcp/0"]
        # c: a peer both know (a node of the mesh), whose directory tells b where a is
        async with open_host(secrets.token_bytes(32), local) as c:  # noqa: SIM117 (b needs c)
            async with open_host(secrets.token_bytes(32), local, c.addrs) as b:
                async with open_host(seed_a, local, c.addrs) as a:
                    a.set_handler(PROTO, _pong)
                    addr, peer_a = a.addrs[0], a.peer_id
                    assert await b.request(peer_a, PROTO, b"1") == b"pong:1"
                port = addr.split("/")[4]
                # a is down: b's dial fails (and py-libp2p remembers the failure)
                with trio.fail_after(30):
                    while "down" not in got:
                        try:
                            await b.connect(addr, timeout=5)
                            await trio.sleep(0.2)  # the old connection not seen closed yet
                        except P2PError as e:
                            got["down"] = str(e)
                # a comes back on the same address with the same key, through c
                async with open_host(seed_a, [f"/ip4/127.0.0.1/tcp/{port}"], c.addrs) as a2:
                    a2.set_handler(PROTO, _pong)
                    assert a2.peer_id == peer_a
                    try:  # reachable at once (not after a minute)
                        got["up"] = await b.request(peer_a, PROTO, b"3", timeout=10)
                    except P2PError as e:
                        got["up"] = str(e)

    trio.run(main)
    assert got["up"] == b"pong:3", got
