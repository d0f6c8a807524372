"""Driver process for tests/node/test_p2p.py: one dnode libp2p host in its own OS process.

Protocol: JSON lines.  stdout carries events
  {"ev": "ready", "peer_id", "addrs", "echo_port"}
  {"ev": "gossip", "topic", "from", "data"(hex)}
  {"ev": "reply", "id", "ok", "result" | "error"}
stdin carries commands {"id": n, "cmd": ..., ...} (see ``COMMANDS``); EOF on stdin or
{"cmd": "quit"} shuts the host down.  Logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dnode.node import tunnel  # noqa: E402
from dnode.node.errors import P2PError  # noqa: E402
from dnode.node.p2p import P2PHost, open_host  # noqa: E402
from dnode.node.tunnel import open_forwarders  # noqa: E402

# refusals of unknown keys are tested; don't wait the daemon's full minute for them
tunnel.UNKNOWN_KEY_WAIT = 1.0

ECHO = "/test/echo/1.0.0"
BOOM = "/test/boom/1.0.0"


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def tcp_echo_server(task_status=trio.TASK_STATUS_IGNORED) -> None:
    async def handle(conn: trio.SocketStream) -> None:
        async with conn:
            try:
                while data := await conn.receive_some(65536):
                    await conn.send_all(data)
                await conn.send_eof()
            except trio.BrokenResourceError:
                pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


async def run_command(host: P2PHost, nursery: trio.Nursery, cmd: dict) -> object:
    c = cmd["cmd"]
    if c == "publish":
        await host.publish(cmd["topic"], bytes.fromhex(cmd["data"]))
        return None
    if c == "request":
        reply = await host.request(
            cmd["peer"], cmd["proto"], bytes.fromhex(cmd["data"]), timeout=cmd.get("timeout", 10)
        )
        return reply.hex()
    if c == "find_peer":
        return await host.find_peer(cmd["peer"], timeout=cmd.get("timeout", 5))
    if c == "known_addrs":
        return host.known_addrs(cmd["peer"])
    if c == "connected":
        return host.connected_peers()
    if c == "raw":
        # write raw bytes on a protocol stream, half-close, read until EOF / reset
        stream = await host.open_stream(cmd["peer"], cmd["proto"])
        await stream.write(bytes.fromhex(cmd["data"]))
        await stream.close_write()
        got = b""
        try:
            with trio.fail_after(cmd.get("timeout", 10)):
                while chunk := await stream.read():
                    got += chunk
        except P2PError:
            return {"reset": True, "data": got.hex()}
        await stream.close()
        return {"reset": False, "data": got.hex()}
    if c == "forward":
        peers = {int(k): v for k, v in cmd["peers"].items()}
        ports = await open_forwarders(nursery, host, cmd["key"], peers, cmd["local_index"])
        return {str(k): v for k, v in ports.items()}
    if c == "wait_topic_peers":
        await host.wait_for_topic_peers(cmd["topic"], cmd.get("n", 1), cmd.get("timeout", 10))
        return None
    raise ValueError(f"unknown command {c!r}")


async def main(args: argparse.Namespace) -> None:
    seed = bytes.fromhex(args.seed)
    async with (
        open_host(
            seed, args.listen, args.bootstrap, topics=args.topic, max_frame=args.max_frame
        ) as host,
        trio.open_nursery() as nursery,
    ):
        echo_port = None
        if args.tcp_echo:
            echo_port = await nursery.start(tcp_echo_server)

        async def echo(peer: str, data: bytes) -> bytes:
            return b"echo:" + data

        async def boom(peer: str, data: bytes) -> bytes:
            raise RuntimeError("boom handler exploded on purpose")

        host.set_handler(ECHO, echo)
        host.set_handler(BOOM, boom)

        if args.tunnel_key:
            allowed = set(args.tunnel_allow)

            async def resolver(peer_id: str, key: str):
                if peer_id in allowed and echo_port is not None:
                    return ("127.0.0.1", echo_port)
                return None

            host.set_tunnel_target(args.tunnel_key, resolver)

        for topic in args.topic:
            rx = host.subscribe(topic)

            async def pump(topic: str = topic, rx=rx) -> None:
                async for peer, data in rx:
                    emit({"ev": "gossip", "topic": topic, "from": peer, "data": data.hex()})

            nursery.start_soon(pump)

        emit({"ev": "ready", "peer_id": host.peer_id, "addrs": host.addrs, "echo_port": echo_port})

        async def handle(cmd: dict) -> None:
            try:
                result = await run_command(host, nursery, cmd)
                emit({"ev": "reply", "id": cmd.get("id"), "ok": True, "result": result})
            except Exception as e:  # noqa: BLE001 - report everything to the test
                error = f"{type(e).__name__}: {e}"
                emit({"ev": "reply", "id": cmd.get("id"), "ok": False, "error": error})

        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buf = b""
        while True:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            quit_ = False
            for line in lines:
                if not line.strip():
                    continue
                cmd = json.loads(line)
                if cmd["cmd"] == "quit":
                    quit_ = True
                    break
                nursery.start_soon(handle, cmd)
            if quit_:
                break
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", required=True)
    ap.add_argument("--listen", action="append", default=None)
    ap.add_argument("--bootstrap", action="append", default=[])
    ap.add_argument("--topic", action="append", default=[])
    ap.add_argument("--max-frame", type=int, default=16 * 1024 * 1024)
    ap.add_argument("--tcp-echo", action="store_true")
    ap.add_argument("--tunnel-key")
    ap.add_argument("--tunnel-allow", action="append", default=[])
    a = ap.parse_args()
    a.listen = a.listen or ["/ip4/127.0.0.1/tcp/0"]
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("libp2p").setLevel(logging.WARNING)
    trio.run(main, a)
