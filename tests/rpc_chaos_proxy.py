"""A real HTTP JSON-RPC proxy that misbehaves on purpose (seeded), for robustness tests.

It forwards POSTed JSON-RPC bodies to an upstream endpoint and, with probability ``fault_rate``,
injects one fault per request instead:

- ``reset``: close the connection with a TCP RST before forwarding (the call never happened);
- ``http_502``: answer 502 Bad Gateway without forwarding;
- ``delay``: forward after sleeping ``delay`` seconds (drawn from the range);
- ``lost_reply``: forward, then reset the connection (the call happened, the answer is lost).

Bound to 127.0.0.1 only. ``counts`` tells what it did, so tests can assert faults occurred.
Run standalone: ``python -m tests.rpc_chaos_proxy UPSTREAM [--port P] [--rate 0.3] [--seed S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("reset", "http_502", "delay", "lost_reply")


class ChaosProxy:
    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.3,
        seed: int = 0,
        delay: tuple[float, float] = (0.2, 1.5),
        port: int = 0,
        plan: list[str | None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.plan = list(plan or [])  # faults (or None) for the first requests, then random
        self.fault_rate = fault_rate
        self.delay = delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {"forwarded": 0, **dict.fromkeys(FAULTS, 0)}
        self.enabled = True  # tests may switch chaos off for setup steps
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault, pause = proxy._draw()
                if fault == "reset":
                    self._reset()
                    return
                if fault == "http_502":
                    self._reply(502, b"bad gateway")
                    return
                if fault == "delay":
                    time.sleep(pause)
                status, reply = proxy._forward(body)
                if fault == "lost_reply":
                    self._reset()
                    return
                self._reply(status, reply)

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST, so the client sees "connection reset"
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()

            def finish(self) -> None:
                with contextlib.suppress(OSError, ValueError):
                    super().finish()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def _draw(self) -> tuple[str | None, float]:
        with self._lock:
            if self.plan:
                planned = self.plan.pop(0)
                if planned is not None:
                    self.counts[planned] += 1
                return planned, self.delay[0]
            hit = self._rng.random() < self.fault_rate
            fault = self._rng.choice(FAULTS)
            pause = self._rng.uniform(*self.delay)
            if not (hit and self.enabled):
                return None, 0.0
            self.counts[fault] += 1
            return fault, pause

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                out = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            out = e.code, e.read()
        except OSError:
            out = 502, b"upstream unreachable"
        with self._lock:
            self.counts["forwarded"] += 1
        return out

    @property
    def faults(self) -> int:
        with self._lock:
            return sum(self.counts[f] for f in FAULTS)

    def start(self) -> ChaosProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @contextlib.contextmanager
    def running(self) -> Iterator[ChaosProxy]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("upstream")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    proxy = ChaosProxy(a.upstream, fault_rate=a.rate, seed=a.seed, port=a.port).start()
    print(proxy.url, flush=True)
    try:
        while True:
            time.sleep(10)
            print(proxy.counts, flush=True)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    main()
