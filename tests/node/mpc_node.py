"""Driver process for tests/node/test_mpc_attacks.py: one node's libp2p host + its MPyC party.

Each process is what the daemon is for one MPC task, minus the chain: it admits the lower
seats' tunnels (bound to their seats, as ``Node._accept_tunnels`` does), opens forwarders
to the higher seats and runs a real MPyC party through them (``SubprocessExecutor``).

JSON lines like tests/node/p2p_peer.py: stdout ``{"ev": "ready", ...}`` and
``{"ev": "reply", "id", "ok", "result" | "error"}``; stdin commands (see ``run_command``).
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
from dnode.node.errors import MpcError, P2PError  # noqa: E402
from dnode.node.mpc.executor import MpcJob, SubprocessExecutor, free_port  # noqa: E402
from dnode.node.p2p import P2PHost, open_host  # noqa: E402
from dnode.node.tunnel import TUNNEL_PROTOCOL, encode_header, tunnel_forwarders  # noqa: E402

sys.path.insert(1, str(Path(__file__).resolve().parent))
from p2p_peer import tcp_echo_server  # noqa: E402

try:  # absent before issue 13: tunnels then admitted any committee member under any seat
    from dnode.node.tunnel import SeatBinding
except ImportError:  # pragma: no cover - only when run against the old code
    SeatBinding = None  # type: ignore[assignment,misc]

tunnel.UNKNOWN_KEY_WAIT = 5.0


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _target(host: P2PHost, key: str, resolve, lower: dict[int, str]) -> None:
    if SeatBinding is not None:
        host.set_tunnel_target(key, resolve, SeatBinding(lower))
    else:
        host.set_tunnel_target(key, resolve)


async def run_session(host: P2PHost, cmd: dict) -> dict:
    """One attempt of a 3-party mpc.sum exactly as the daemon runs it."""
    key, peers, seat, timeout = cmd["key"], cmd["peers"], cmd["seat"], cmd["timeout"]
    members = set(peers)
    party_port = free_port()
    started = trio.Event()

    async def resolve(peer_id: str, k: str):
        if k != key or peer_id not in members:
            return None
        with trio.move_on_after(timeout):
            await started.wait()
        return ("127.0.0.1", party_port) if started.is_set() else None

    _target(host, key, resolve, dict(enumerate(peers[:seat])))
    remote = {i: p for i, p in enumerate(peers) if i != seat}
    executor = SubprocessExecutor(python=cmd.get("python") or sys.executable)
    try:
        async with tunnel_forwarders(host, key, remote, seat) as ports:
            parties = [
                ("127.0.0.1", party_port if i == seat else ports[i]) for i in range(len(peers))
            ]
            job = MpcJob(
                cmd["task_id"],
                "mpc.sum",
                "dnode.node.engines.mpc.kernels.stats",
                {"needs": ["sum"]},
                1,
                64,
                seat,
                parties,
                1,
                cmd["shares"],
            )
            out = await executor.run_party(job, timeout=timeout, listening=started)
    except MpcError as e:
        return {"ok": False, "error": e.detail}
    except BaseExceptionGroup as eg:
        return {"ok": False, "error": repr(eg)}
    finally:
        host.remove_tunnel_target(key)
    return {"ok": True, "sum": out.revealed["sum"][0]}


async def run_command(host: P2PHost, nursery: trio.Nursery, cmd: dict) -> object:
    c = cmd["cmd"]
    if c == "run":
        return await run_session(host, cmd)
    if c == "bind_echo":
        # a bound target whose local program echoes: what reaches "MPyC" comes back
        port = await nursery.start(tcp_echo_server)
        members = set(cmd["members"])

        async def resolve(peer_id: str, k: str):
            return ("127.0.0.1", port) if peer_id in members else None

        _target(host, cmd["key"], resolve, {int(k): v for k, v in cmd["seats"].items()})
        return port
    if c == "dial":
        # a hand-made tunnel stream: claim party ``index`` and send ``data`` (hex)
        for attempt in range(5):  # a connection reset by an earlier test may linger
            try:
                stream = await host.open_stream(cmd["peer"], TUNNEL_PROTOCOL)
                break
            except P2PError:
                if attempt == 4:
                    raise
                await trio.sleep(1)
        await stream.write(encode_header(cmd["key"], cmd["index"]))
        try:
            with trio.fail_after(20):
                ack = await stream.read(1)
        except P2PError:
            return {"accepted": False, "echo": ""}
        if ack != tunnel.ACCEPT:
            return {"accepted": False, "echo": ""}
        await stream.write(bytes.fromhex(cmd["data"]))
        await stream.close_write()
        got = b""
        reset = False
        try:
            with trio.fail_after(20):
                while chunk := await stream.read():
                    got += chunk
        except P2PError:
            reset = True
        return {"accepted": True, "echo": got.hex(), "reset": reset}
    raise ValueError(f"unknown command {c!r}")


async def main(args: argparse.Namespace) -> None:
    async with (
        open_host(bytes.fromhex(args.seed), ["/ip4/127.0.0.1/tcp/0"], args.bootstrap) as host,
        trio.open_nursery() as nursery,
    ):
        emit({"ev": "ready", "peer_id": host.peer_id, "addrs": host.addrs})

        async def handle(cmd: dict) -> None:
            try:
                result = await run_command(host, nursery, cmd)
                emit({"ev": "reply", "id": cmd.get("id"), "ok": True, "result": result})
            except Exception as e:  # noqa: BLE001 - report everything to the test
                emit({"ev": "reply", "id": cmd.get("id"), "ok": False, "error": repr(e)})

        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buf = b""
        while chunk := await stdin.receive_some(65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            cmds = [json.loads(line) for line in lines if line.strip()]
            if any(c["cmd"] == "quit" for c in cmds):
                break
            for c in cmds:
                nursery.start_soon(handle, c)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", required=True)
    ap.add_argument("--bootstrap", action="append", default=[])
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("libp2p").setLevel(logging.WARNING)
    trio.run(main, ap.parse_args())
