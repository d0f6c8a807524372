"""Multi-process tests of node.p2p / node.tunnel: every host is its own OS process
(tests/node/p2p_peer.py) talking real libp2p (Noise/TCP/yamux) over 127.0.0.1.

Network used by all tests (module fixture):  A, B, C each bootstrap only to BOOT.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dnode.node.p2p import peer_id_from_seed

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("p2p_peer.py")
TOPIC = "dnode/test"
ECHO = "/test/echo/1.0.0"
BOOM = "/test/boom/1.0.0"
TUNNEL_KEY = "task:7"
C_MAX_FRAME = 64 * 1024

pytestmark = pytest.mark.timeout(120)


def seed(i: int) -> bytes:
    return bytes([i]) * 32


class Peer:
    """A driver process; commands go to stdin, JSON events come back on stdout."""

    def __init__(
        self, name: str, logdir: Path, *args: str, driver: Path = DRIVER, env: dict | None = None
    ) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, str(driver), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            cwd=REPO,
            env=env,
        )
        self._cond = threading.Condition()
        self._replies: dict[int, dict] = {}
        self.gossip: list[tuple[str, str, bytes]] = []
        self.ready: dict | None = None
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if ev["ev"] == "ready":
                    self.ready = ev
                elif ev["ev"] == "gossip":
                    self.gossip.append((ev["topic"], ev["from"], bytes.fromhex(ev["data"])))
                elif ev["ev"] == "reply":
                    self._replies[ev["id"]] = ev
                self._cond.notify_all()

    def _wait(self, pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = pred()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.name}: timed out waiting for {what} "
                        f"(exit={self.proc.poll()}); log tail:\n{self.log_tail()}"
                    )
                self._cond.wait(min(left, 0.2))

    def wait_ready(self, timeout: float = 30) -> dict:
        return self._wait(lambda: self.ready, timeout, "ready")

    @property
    def peer_id(self) -> str:
        assert self.ready
        return self.ready["peer_id"]

    @property
    def addr(self) -> str:
        assert self.ready
        return self.ready["addrs"][0]

    def send(self, cmd: str, **kw) -> int:
        with self._cond:
            self._next_id += 1
            cid = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": cid, "cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return cid

    def reply(self, cid: int, timeout: float = 20) -> dict:
        return self._wait(lambda: self._replies.pop(cid, None), timeout, f"reply {cid}")

    def call(self, cmd: str, timeout: float = 20, **kw):
        r = self.reply(self.send(cmd, **kw), timeout)
        assert r["ok"], f"{self.name} {cmd}: {r['error']}"
        return r["result"]

    def call_error(self, cmd: str, timeout: float = 20, **kw) -> str:
        r = self.reply(self.send(cmd, **kw), timeout)
        assert not r["ok"], f"{self.name} {cmd} unexpectedly succeeded: {r['result']}"
        return r["error"]

    def wait_gossip(self, pred, timeout: float = 10, what: str = "gossip"):
        return self._wait(lambda: [g for g in self.gossip if pred(g)], timeout, what)

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text()[-n:]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("quit")
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self._log.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("p2p-logs")
    peers: dict[str, Peer] = {}
    try:
        boot = peers["boot"] = Peer("boot", logdir, "--seed", seed(1).hex(), "--topic", TOPIC)
        boot.wait_ready()
        b_id = peer_id_from_seed(seed(3))
        peers["a"] = Peer(
            "a",
            logdir,
            "--seed",
            seed(2).hex(),
            "--bootstrap",
            boot.addr,
            "--topic",
            TOPIC,
            "--tcp-echo",
            "--tunnel-key",
            TUNNEL_KEY,
            "--tunnel-allow",
            b_id,
        )
        peers["b"] = Peer(
            "b", logdir, "--seed", seed(3).hex(), "--bootstrap", boot.addr, "--topic", TOPIC
        )
        peers["c"] = Peer(
            "c",
            logdir,
            "--seed",
            seed(4).hex(),
            "--bootstrap",
            boot.addr,
            "--topic",
            TOPIC,
            "--max-frame",
            str(C_MAX_FRAME),
        )
        for p in peers.values():
            p.wait_ready()
        assert peers["b"].peer_id == b_id  # deterministic identity from the seed
        initial = {n: set(p.call("connected")) for n, p in peers.items() if n != "boot"}
        yield peers, initial, logdir
    finally:
        for p in peers.values():
            p.close()


def test_identity_and_addrs(net):
    peers, _, _ = net
    boot = peers["boot"]
    assert boot.peer_id == peer_id_from_seed(seed(1))
    assert boot.addr.startswith("/ip4/127.0.0.1/tcp/")
    assert boot.addr.endswith(f"/p2p/{boot.peer_id}")
    assert int(boot.addr.split("/")[4]) > 0  # the real bound port, not 0


def test_gossip_through_bootstrap(net):
    peers, initial, _ = net
    boot, a, b, c = (peers[k] for k in ("boot", "a", "b", "c"))
    for name in "abc":  # connected only through the bootstrap host
        assert initial[name] == {boot.peer_id}, (name, initial[name])
    a.call("wait_topic_peers", topic=TOPIC, n=1, timeout=10)
    # mesh warm-up: the gossipsub heartbeat (1 s) grafts B and C into BOOT's mesh
    deadline = time.monotonic() + 15
    i = 0
    while True:
        a.call("publish", topic=TOPIC, data=f"warm-{i}".encode().hex())
        i += 1
        got_b = [g for g in b.gossip if g[1] == a.peer_id]
        got_c = [g for g in c.gossip if g[1] == a.peer_id]
        if got_b and got_c:
            break
        assert time.monotonic() < deadline, "gossip never reached B and C"
        time.sleep(0.3)
    a.call("publish", topic=TOPIC, data=b"final from a".hex())
    for p in (b, c, boot):
        p.wait_gossip(lambda g: g == (TOPIC, a.peer_id, b"final from a"), 5, "final from a")
    c.call("publish", topic=TOPIC, data=b"from c".hex())
    for p in (a, b):
        p.wait_gossip(lambda g: g == (TOPIC, c.peer_id, b"from c"), 5, "from c")
    time.sleep(0.5)  # no duplicates
    assert sum(1 for g in b.gossip if g[2] == b"final from a") == 1
    # > 1 MiB refused, exactly 1 MiB delivered
    err = a.call_error("publish", topic=TOPIC, data=(b"x" * (1024 * 1024 + 1)).hex())
    assert "P2PError" in err
    big = bytes(range(256)) * 4096
    a.call("publish", topic=TOPIC, data=big.hex())
    b.wait_gossip(lambda g: g[2] == big, 10, "1 MiB gossip")


def test_request_response_and_directory(net, tmp_path):
    peers, _, _ = net
    boot, a, b, c = (peers[k] for k in ("boot", "a", "b", "c"))
    # direct request to a connected peer
    assert (
        bytes.fromhex(b.call("request", peer=boot.peer_id, proto=ECHO, data=b"hi".hex()))
        == b"echo:hi"
    )
    # a short-lived client connected only to BOOT reaches C by peer id
    d = Peer("d", tmp_path, "--seed", seed(9).hex(), "--bootstrap", boot.addr)
    try:
        d.wait_ready()
        assert d.call("connected") == [boot.peer_id]
        assert d.call("known_addrs", peer=c.peer_id) == []
        found = d.call("find_peer", peer=c.peer_id, timeout=5)
        assert c.addr in found, (found, c.ready)
        assert c.addr in d.call("known_addrs", peer=c.peer_id)
        out = d.call("request", peer=c.peer_id, proto=ECHO, data=b"to c".hex())
        assert bytes.fromhex(out) == b"echo:to c"
        # without an explicit find_peer: request() consults the directory itself
        assert d.call("known_addrs", peer=a.peer_id) == []
        out = d.call("request", peer=a.peer_id, proto=ECHO, data=b"to a".hex())
        assert bytes.fromhex(out) == b"echo:to a"
        assert {a.peer_id, c.peer_id, boot.peer_id} <= set(d.call("connected"))
        # unknown peer: clean error, no hang
        ghost = peer_id_from_seed(seed(77))
        err = d.call_error("request", peer=ghost, proto=ECHO, data="00", timeout=5)
        assert err.startswith("P2PError"), err
    finally:
        d.close()
    # B -> C (both committee-like members) directly by peer id
    out = b.call("request", peer=c.peer_id, proto=ECHO, data=b"b2c".hex())
    assert bytes.fromhex(out) == b"echo:b2c"
    # a reachable peer that does not serve a protocol says so (a data owner's agent asked
    # for join intents): a typed error the caller can act on, unlike a dead peer
    err = b.call_error("request", peer=c.peer_id, proto="/test/none/1.0.0", data="00", timeout=5)
    assert err.startswith("ProtocolNotServed"), err


def test_bad_requests_are_dropped_and_host_keeps_serving(net):
    peers, _, _ = net
    b, c = peers["b"], peers["c"]
    ok = lambda: bytes.fromhex(b.call("request", peer=c.peer_id, proto=ECHO, data=b"ok".hex()))  # noqa: E731
    assert ok() == b"echo:ok"
    # absurd length prefix (4 GiB) -> reset without reading
    r = b.call("raw", peer=c.peer_id, proto=ECHO, data="ffffffff")
    assert r["reset"] and r["data"] == ""
    assert ok() == b"echo:ok"
    # truncated frame (says 16 bytes, sends 3, then EOF) -> reset
    r = b.call("raw", peer=c.peer_id, proto=ECHO, data=(b"\x00\x00\x00\x10abc").hex())
    assert r["reset"]
    assert ok() == b"echo:ok"
    # short length prefix
    r = b.call("raw", peer=c.peer_id, proto=ECHO, data="0000")
    assert r["reset"]
    # request larger than C's max frame (64 KiB) -> reset, reported as P2PError
    err = b.call_error("request", peer=c.peer_id, proto=ECHO, data=(b"y" * 100_000).hex())
    assert "P2PError" in err and "reset" in err
    assert ok() == b"echo:ok"
    # handler raising -> reset
    err = b.call_error("request", peer=c.peer_id, proto=BOOM, data=b"x".hex())
    assert "P2PError" in err and "reset" in err
    # protocol nobody serves -> negotiation fails cleanly
    # a protocol the peer does not serve: the typed subclass of P2PError says so
    err = b.call_error("request", peer=c.peer_id, proto="/nope/1", data="00")
    assert err.startswith("ProtocolNotServed"), err
    assert ok() == b"echo:ok"
    log = c.log_tail(100_000)
    assert "dropped request" in log and "handler failed" in log


def _echo_through(port: int, payload: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # half-close: the echo server sees EOF, replies, closes
        buf = bytearray()
        while chunk := s.recv(65536):
            buf += chunk
    return bytes(buf)


def test_tunnel_echo_and_refusal(net):
    peers, _, _ = net
    a, b, c = peers["a"], peers["b"], peers["c"]
    ports = b.call("forward", key=TUNNEL_KEY, peers={"0": a.peer_id}, local_index=1)
    port = ports["0"]
    payload = os.urandom(300_000)
    assert _echo_through(port, payload) == payload
    # several concurrent connections through the same forwarder
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(
                _echo_through(port, bytes([i]) * 50_000) == bytes([i]) * 50_000
            )
        )
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [True] * 4
    # C is not allowed by A's resolver: the tunnel stream is reset, the socket closed
    cports = c.call("forward", key=TUNNEL_KEY, peers={"0": a.peer_id}, local_index=2)
    assert _refused(cports["0"])
    # unknown key from an otherwise allowed peer: refused too
    kports = b.call("forward", key="task:999", peers={"0": a.peer_id}, local_index=1)
    assert _refused(kports["0"])
    log = a.log_tail(100_000)
    assert "tunnel refused" in log and c.peer_id in log
    # the allowed tunnel still works afterwards
    assert _echo_through(port, b"still fine") == b"still fine"


def _refused(port: int) -> bool:
    try:
        got = _echo_through(port, b"let me in", timeout=10)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return got == b""


def test_garbage_on_gossip_stream_does_not_kill_host(net, tmp_path):
    """py-libp2p 0.8.1 lets a protobuf DecodeError from a pubsub stream tear down the
    whole host; node.p2p guards against it (the offending peer is dropped)."""
    peers, _, _ = net
    boot, a, b = peers["boot"], peers["a"], peers["b"]
    e = Peer("e", tmp_path, "--seed", seed(10).hex(), "--bootstrap", boot.addr)
    try:
        e.wait_ready()
        r = e.call("raw", peer=boot.peer_id, proto="/meshsub/1.2.0", data="030affff")
        assert r["reset"]
    finally:
        e.close()
    assert boot.proc.poll() is None
    assert "gossip stream from" in boot.log_tail(100_000)
    out = b.call("request", peer=boot.peer_id, proto=ECHO, data=b"alive?".hex())
    assert bytes.fromhex(out) == b"echo:alive?"
    a.call("publish", topic=TOPIC, data=b"after garbage".hex())
    b.wait_gossip(lambda g: g == (TOPIC, a.peer_id, b"after garbage"), 5, "after garbage")
