#!/usr/bin/env python
"""A multi-host network on one machine: a Linux network namespace per host, joined by a
user-space router that delays, jitters and drops packets between them.

Each host (chain, requester, data owner, node, ...) is its own network namespace with a TUN
device ``lab0`` holding one address of 10.77.0.0/24 (and its own loopback). A router process
(in the namespace this script starts in) holds the other end of every TUN device: it reads each
IP packet a host sends, drops it with probability ``loss``, and writes it to the destination
host's device after a one-way delay of ``rtt/2 ± jitter`` (uniform), keeping each link's packets
in order (TCP sees latency and loss, not reordering). This kernel has no ``netem`` qdisc, so the
router does netem's job. Only the hosts' own addresses route through it: the namespace the
script starts in gets no address and no route into the lab, so lab traffic stays in the lab.

Everything is torn down on exit (normal, exception, SIGINT, SIGTERM): processes left in a
host are killed, the router exits (its TUN devices vanish with it) and the namespaces are
deleted. The router also exits when its parent dies (its stdin closes); ``--cleanup`` removes
namespaces left by a lab whose process was killed with SIGKILL.

Self-test (needs root): brings up ``--hosts`` hosts, measures TCP connect and echo round trips
and a bulk transfer between two of them through the router, and reports the router's counts::

    python scripts/netlab.py --hosts 3 --rtt 50 --jitter 5 --loss 0.01 --json

Used by scripts/bench_network.py (``--netlab``) and tests/test_netlab.py (``-m multihost``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBNET = "10.77.0"  # host i (0-based) is 10.77.0.(i + 1)/24
DEVICE = "lab0"
NETNS_DIR = Path("/var/run/netns")
PREFIX = "dnl"  # namespaces are dnl<pid>-<host>: <pid> is the lab's owner process

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


class LabError(RuntimeError):
    """The lab could not be set up (not root, no /dev/net/tun, ip failed, ...)."""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


# ---- the router (its own process) ----------------------------------------------------------


@dataclass
class RouterStats:
    received: int = 0  # IPv4 packets read from the hosts' devices
    forwarded: int = 0
    dropped_loss: int = 0  # the configured random loss
    dropped_overflow: int = 0  # the destination device's queue was full
    unroutable: int = 0  # not IPv4, or to an address no host holds
    max_queue: int = 0


def open_tun(netns: str) -> int:
    """Create TUN device ``lab0`` inside namespace ``netns``; return its fd (the device lives
    as long as the fd is open)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(str(NETNS_DIR / netns), os.O_RDONLY)
    try:
        setns(target)
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR)
            ifr = struct.pack("16sH22x", DEVICE.encode(), IFF_TUN | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        finally:
            setns(home)
    finally:
        os.close(target)
        os.close(home)
    os.set_blocking(fd, False)
    return fd


def route(
    devices: dict[bytes, int],
    rtt: float,
    jitter: float,
    loss: float,
    seed: int | None,
    stats_path: Path | None,
    stop_fd: int,
) -> RouterStats:
    """Forward IPv4 packets between the devices (address -> fd) until ``stop_fd`` reads EOF
    or says ``stop``. Delays in seconds; ``loss`` a probability per packet."""
    rng = random.Random(seed)
    one_way = rtt / 2
    st = RouterStats()
    ep = select.epoll()
    for fd in devices.values():
        ep.register(fd, select.EPOLLIN)
    ep.register(stop_fd, select.EPOLLIN)
    queue: list[tuple[float, int, int, bytes]] = []  # (release time, seq, out fd, packet)
    last: dict[tuple[int, int], float] = {}  # per link: the last release time (keeps order)
    seq = 0
    next_stats = 0.0

    def write_stats() -> None:
        if stats_path is not None:
            tmp = stats_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(vars(st)))
            tmp.replace(stats_path)

    try:
        while True:
            now = time.monotonic()
            timeout = max(0.0, queue[0][0] - now) if queue else 0.5
            for fd, _ in ep.poll(timeout):
                if fd == stop_fd:
                    msg = os.read(stop_fd, 64)
                    if not msg or msg.startswith(b"stop"):
                        return st
                    continue
                now = time.monotonic()
                for _ in range(256):
                    try:
                        pkt = os.read(fd, 65536)
                    except (BlockingIOError, InterruptedError):
                        break
                    if len(pkt) < 20 or pkt[0] >> 4 != 4:
                        st.unroutable += 1
                        continue
                    out = devices.get(pkt[16:20])
                    if out is None:
                        st.unroutable += 1
                        continue
                    st.received += 1
                    if loss and rng.random() < loss:
                        st.dropped_loss += 1
                        continue
                    t = now + one_way + (rng.uniform(-jitter, jitter) if jitter else 0.0)
                    t = max(t, last.get((fd, out), 0.0))
                    last[(fd, out)] = t
                    heapq.heappush(queue, (t, seq, out, pkt))
                    seq += 1
            st.max_queue = max(st.max_queue, len(queue))
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _, _, out, pkt = heapq.heappop(queue)
                try:
                    os.write(out, pkt)
                    st.forwarded += 1
                except (BlockingIOError, OSError):
                    st.dropped_overflow += 1
            if now >= next_stats:
                write_stats()
                next_stats = now + 1.0
    finally:
        write_stats()


def router_main(spec: dict[str, Any]) -> None:
    """``netlab.py --router SPEC``: open the devices, say ``ready``, route until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab stops it (stdin), not a ^C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    devices = {}
    for netns, addr in spec["hosts"]:
        devices[bytes(int(x) for x in addr.split("."))] = open_tun(netns)
    print("ready", flush=True)
    stats_path = Path(spec["stats"]) if spec.get("stats") else None
    route(devices, spec["rtt"], spec["jitter"], spec["loss"], spec.get("seed"), stats_path, 0)


# ---- the lab -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str

    @property
    def enter(self) -> list[str]:
        """argv prefix that runs a command on this host."""
        return ["ip", "netns", "exec", self.netns]


@dataclass
class NetLab:
    """``with NetLab(["chain", "requester", "node-1"], rtt_ms=50, loss=0.01) as lab: ...``"""

    names: Sequence[str]
    rtt_ms: float = 50.0
    jitter_ms: float = 5.0
    loss: float = 0.01
    seed: int | None = None
    hosts: dict[str, Host] = field(default_factory=dict, init=False)
    _router: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _stats_dir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)
    _old_handlers: dict[int, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names) or not self.names:
            raise LabError(f"host names must be distinct and not empty: {list(self.names)}")
        if len(self.names) > 250:
            raise LabError("at most 250 hosts (one /24)")
        if not 0 <= self.loss < 1 or self.rtt_ms < 0 or self.jitter_ms < 0:
            raise LabError("need 0 <= loss < 1, rtt >= 0, jitter >= 0")
        if self.jitter_ms > self.rtt_ms / 2:
            raise LabError("jitter must not exceed the one-way delay (rtt / 2)")
        tag = f"{PREFIX}{os.getpid()}"
        for i, name in enumerate(self.names):
            self.hosts[name] = Host(name, f"{tag}-{i}", f"{SUBNET}.{i + 1}")

    # -- set-up and teardown

    def __enter__(self) -> NetLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if os.geteuid() != 0:
            raise LabError("netlab needs root (network namespaces, TUN devices)")
        if not os.path.exists("/dev/net/tun"):
            raise LabError("no /dev/net/tun")
        self._trap_signals()
        try:
            for h in self.hosts.values():
                _ip("netns", "add", h.netns)
                _ip("-n", h.netns, "link", "set", "lo", "up")
            self._stats_dir = tempfile.TemporaryDirectory(prefix="netlab-")
            spec = {
                "hosts": [(h.netns, h.address) for h in self.hosts.values()],
                "rtt": self.rtt_ms / 1000,
                "jitter": self.jitter_ms / 1000,
                "loss": self.loss,
                "seed": self.seed,
                "stats": str(Path(self._stats_dir.name) / "router.json"),
            }
            self._router = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--router", json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # a ^C to the lab's terminal is the lab's to handle
            )
            assert self._router.stdout is not None
            line = self._router.stdout.readline()
            if line.strip() != b"ready":
                raise LabError(f"router did not start (exit {self._router.wait(5)})")
            for h in self.hosts.values():
                _ip("-n", h.netns, "addr", "add", f"{h.address}/24", "dev", DEVICE)
                _ip("-n", h.netns, "link", "set", DEVICE, "up")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill what still runs in the hosts, stop the router, delete the namespaces."""
        for h in self.hosts.values():
            for pid in self.pids(h.name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._router is not None:
            with contextlib.suppress(OSError, ValueError):
                assert self._router.stdin is not None
                self._router.stdin.write(b"stop\n")
                self._router.stdin.close()
            try:
                self._router.wait(10)
            except subprocess.TimeoutExpired:
                self._router.kill()
                self._router.wait(5)
            self._router = None
        for h in self.hosts.values():
            if (NETNS_DIR / h.netns).exists():
                _ip("netns", "del", h.netns, check=False)
        if self._stats_dir is not None:
            self._stats_dir.cleanup()
            self._stats_dir = None
        self._restore_signals()

    def _trap_signals(self) -> None:
        """SIGTERM (and SIGINT) unwind through ``stop`` instead of killing the process with
        the namespaces still standing. Only from the main thread; idempotent."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGTERM, signal.SIGINT):
            if sig not in self._old_handlers:
                self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            with contextlib.suppress(ValueError):
                signal.signal(sig, old)
        self._old_handlers.clear()

    # -- using it

    def host(self, name: str) -> Host:
        return self.hosts[name]

    def pids(self, name: str) -> list[int]:
        h = self.hosts[name]
        if not (NETNS_DIR / h.netns).exists():
            return []
        out = _ip("netns", "pids", h.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def popen(self, name: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen([*self.hosts[name].enter, *argv], **kw)

    def run(self, name: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        return subprocess.run([*self.hosts[name].enter, *argv], **kw)

    @contextlib.contextmanager
    def entered(self, name: str) -> Iterator[Host]:
        """Run the calling thread on host ``name`` (sockets it opens, processes and threads it
        starts are there) until the block ends. Threads started earlier stay where they were."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(str(NETNS_DIR / self.hosts[name].netns), os.O_RDONLY)
        try:
            setns(target)
            try:
                yield self.hosts[name]
            finally:
                setns(home)
        finally:
            os.close(target)
            os.close(home)

    def placement(self, default: str, chain: str = "chain") -> Any:
        """A :class:`dnode.cli.devcluster.Placement` of a DevCluster on this lab's hosts: each
        cluster user whose name is a host runs there, the others on ``default``."""
        from dnode.cli.devcluster import Placement

        return Placement(
            {h.name: (h.enter, h.address) for h in self.hosts.values()}, default, chain
        )

    def router_stats(self) -> dict[str, int]:
        """The router's counters (refreshed every second while it runs)."""
        if self._stats_dir is None:
            return {}
        try:
            return dict(json.loads((Path(self._stats_dir.name) / "router.json").read_text()))
        except (OSError, ValueError):
            return {}

    def describe(self) -> dict[str, Any]:
        return {
            "hosts": {
                h.name: {"netns": h.netns, "address": h.address} for h in self.hosts.values()
            },
            "rtt_ms": self.rtt_ms,
            "jitter_ms": self.jitter_ms,
            "loss_per_packet": self.loss,
            "model": "user-space router: one-way delay rtt/2 ± jitter (uniform), per-packet "
            "random loss each way, order kept per link",
        }


def leftovers() -> list[str]:
    """Namespaces of labs whose owner process is gone."""
    out = []
    for p in NETNS_DIR.glob(f"{PREFIX}*-*"):
        pid = p.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            out.append(p.name)
    return sorted(out)


def ours() -> list[str]:
    """Namespaces of labs owned by this process."""
    return sorted(p.name for p in NETNS_DIR.glob(f"{PREFIX}{os.getpid()}-*"))


# ---- self-test -----------------------------------------------------------------------------

ECHO_SERVER = r"""
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 7007)); srv.listen(64)
print("listening", flush=True)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with c:
        while True:
            b = c.recv(1 << 16)
            if not b:
                return
            if b[:1] == b"B":  # bulk: read until the sender closes, then say how much
                n = len(b)
                while (b := c.recv(1 << 16)):
                    n += len(b)
                c.sendall(str(n).encode())
                return
            c.sendall(b)
while True:
    c, peer = srv.accept()
    print("peer", peer[0], flush=True)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

PROBE = r"""
import json, socket, sys, time
addr, n, bulk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
connects, echoes = [], []
for _ in range(max(1, n // 10)):
    t = time.perf_counter(); s = socket.create_connection((addr, 7007), 30)
    connects.append(time.perf_counter() - t); s.close()
s = socket.create_connection((addr, 7007), 30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(n):
    t = time.perf_counter(); s.sendall(b"e%07d" % i)
    got = b""
    while len(got) < 8:
        got += s.recv(64)
    echoes.append(time.perf_counter() - t)
s.close()
s = socket.create_connection((addr, 7007), 30)
payload = b"B" + b"x" * (bulk - 1)
t = time.perf_counter(); s.sendall(payload); s.shutdown(socket.SHUT_WR)
got = int(s.recv(64)); dt = time.perf_counter() - t
print(json.dumps({"connect": connects, "echo": echoes, "bulk_bytes": got, "bulk_s": dt}))
"""


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))]


def default_gateway() -> str:
    words = _ip("route", "show", "default", check=False).stdout.split()
    return words[words.index("via") + 1] if "via" in words else "1.1.1.1"


def self_test(a: argparse.Namespace) -> dict[str, Any]:
    a.outside = a.outside or default_gateway()
    names = [f"h{i + 1}" for i in range(a.hosts)]
    with NetLab(names, a.rtt, a.jitter, a.loss, a.seed) as lab:
        server_host, client_host = names[-1], names[0]
        srv = lab.popen(
            server_host,
            [sys.executable, "-c", ECHO_SERVER, lab.host(server_host).address],
            stdout=subprocess.PIPE,
        )
        assert srv.stdout is not None
        srv.stdout.readline()
        # traffic stays inside: the namespace outside the lab does not reach its hosts (what
        # answers there, if anything, is not the lab's server), a host does not reach out
        knock = "import socket; s = socket.create_connection((%r, %d), 3); s.sendall(b'x')"
        subprocess.run(
            [sys.executable, "-c", knock % (lab.host(server_host).address, 7007)],
            capture_output=True, timeout=30,
        )  # fmt: skip
        outside = lab.run(
            client_host,
            [sys.executable, "-c", knock % (a.outside, 80)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        r = lab.run(
            client_host,
            [sys.executable, "-c", PROBE, lab.host(server_host).address, str(a.samples),
             str(a.bulk)],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        m = json.loads(r.stdout)
        srv.kill()
        peers = {line.split()[1] for line in srv.communicate()[0].decode().splitlines()}
        stats = lab.router_stats()
        time.sleep(1.1)  # one more stats write
        stats = lab.router_stats() or stats
        out = {
            "lab": lab.describe(),
            "pair": f"{client_host} -> {server_host}",
            "tcp_connect_ms": {
                "median": round(1000 * statistics.median(m["connect"]), 1),
                "n": len(m["connect"]),
            },
            "echo_rtt_ms": {
                "median": round(1000 * statistics.median(m["echo"]), 1),
                "p10": round(1000 * pct(m["echo"], 10), 1),
                "p90": round(1000 * pct(m["echo"], 90), 1),
                "p99": round(1000 * pct(m["echo"], 99), 1),
                "n": len(m["echo"]),
            },
            "bulk": {
                "bytes": m["bulk_bytes"],
                "seconds": round(m["bulk_s"], 3),
                "mbit_per_s": round(8 * m["bulk_bytes"] / m["bulk_s"] / 1e6, 2),
            },
            "router": stats,
            "drop_fraction": round(
                stats.get("dropped_loss", 0) / max(1, stats.get("received", 0)), 4
            ),
            "server_peers": sorted(peers),
            "only_lab_peers_reached_server": all(p.startswith(SUBNET + ".") for p in peers),
            "host_cannot_reach_outside": outside.returncode != 0
            and "unreachable" in outside.stderr.lower(),
        }
    out["namespaces_left"] = ours()
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--router":
        router_main(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--rtt", type=float, default=50.0, help="round trip between hosts, ms [50]")
    ap.add_argument("--jitter", type=float, default=5.0, help="± per one-way trip, ms [5]")
    ap.add_argument("--loss", type=float, default=0.01, help="per packet, each way [0.01]")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--samples", type=int, default=300, help="echo round trips [300]")
    ap.add_argument("--bulk", type=int, default=4_000_000, help="bytes of the bulk transfer")
    ap.add_argument("--outside", help="an address outside the lab [the default gateway]")
    ap.add_argument("--cleanup", action="store_true", help="delete namespaces of dead labs")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.cleanup:
        gone = leftovers()
        for ns in gone:
            _ip("netns", "del", ns, check=False)
        print(json.dumps({"deleted": gone}))
        return
    try:
        res = self_test(a)
    except KeyboardInterrupt as e:  # SIGINT/SIGTERM: the lab is already torn down
        print(f"netlab: stopped ({e or 'interrupted'}); namespaces left: {ours()}", file=sys.stderr)
        sys.exit(130)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    e, b = res["echo_rtt_ms"], res["bulk"]
    print(
        f"{res['pair']}: echo RTT median {e['median']} ms (p10 {e['p10']}, p90 {e['p90']}, "
        f"p99 {e['p99']}); connect median {res['tcp_connect_ms']['median']} ms; bulk "
        f"{b['mbit_per_s']} Mbit/s; dropped {100 * res['drop_fraction']:.2f}% of "
        f"{res['router'].get('received')} packets"
    )
    print(
        f"only lab peers reached the server: {res['only_lab_peers_reached_server']}; "
        f"a host cannot reach outside: {res['host_cannot_reach_outside']}; "
        f"namespaces left: {res['namespaces_left']}"
    )


if __name__ == "__main__":
    main()
