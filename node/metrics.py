"""Prometheus metrics and a JSON status page for a running node (stdlib only).

The daemon updates values from its trio thread; a small ``http.server`` in a daemon thread,
bound to 127.0.0.1, serves ``/metrics`` (Prometheus text exposition format 0.0.4) and
``/status`` (the JSON ``dnode status`` prints). Reads and writes share one lock.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Labels = tuple[tuple[str, str], ...]

# seconds: an MPC session on loopback takes ~1-10 s, HE evaluation up to minutes
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


def _labels(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _fmt_labels(labels: Labels, extra: Iterable[tuple[str, str]] = ()) -> str:
    items = [*labels, *extra]
    if not items:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in items
    )
    return "{" + body + "}"


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Metrics:
    """Counters, gauges and histograms, each with optional labels."""

    def __init__(self, prefix: str = "dnode_") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._meta: dict[str, tuple[str, str]] = {}  # name -> (type, help)
        self._values: dict[str, dict[Labels, float]] = {}
        self._hist: dict[str, tuple[tuple[float, ...], dict[Labels, list[float]]]] = {}
        self._collectors: list[Callable[[], None]] = []

    def _declare(self, name: str, kind: str, help: str) -> str:
        full = self.prefix + name
        self._meta.setdefault(full, (kind, help))
        return full

    def counter(self, name: str, help: str) -> None:
        self._values.setdefault(self._declare(name, "counter", help), {})

    def gauge(self, name: str, help: str) -> None:
        self._values.setdefault(self._declare(name, "gauge", help), {})

    def histogram(
        self, name: str, help: str, buckets: tuple[float, ...] = DURATION_BUCKETS
    ) -> None:
        self._hist.setdefault(self._declare(name, "histogram", help), (buckets, {}))

    def inc(self, name: str, by: float = 1, **labels: str) -> None:
        with self._lock:
            series = self._values[self.prefix + name]
            key = _labels(labels)
            series[key] = series.get(key, 0) + by

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[self.prefix + name][_labels(labels)] = value

    def replace(self, name: str, values: dict[str, float], label: str) -> None:
        """Set a whole labelled family at once (e.g. tasks by state), dropping old labels."""
        with self._lock:
            self._values[self.prefix + name] = {((label, k),): v for k, v in values.items()}

    def observe(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            buckets, series = self._hist[self.prefix + name]
            row = series.setdefault(_labels(labels), [0.0] * (len(buckets) + 2))
            for i, b in enumerate(buckets):
                if value <= b:
                    row[i] += 1
            row[-2] += value  # sum
            row[-1] += 1  # count

    def on_collect(self, fn: Callable[[], None]) -> None:
        """``fn`` refreshes some values right before each scrape."""
        self._collectors.append(fn)

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[self.prefix + name].get(_labels(labels), 0.0)

    def render(self) -> str:
        for fn in self._collectors:
            fn()
        out: list[str] = []
        with self._lock:
            for full, (kind, help) in sorted(self._meta.items()):
                out.append(f"# HELP {full} {help}")
                out.append(f"# TYPE {full} {kind}")
                if kind == "histogram":
                    buckets, series = self._hist[full]
                    for labels, row in sorted(series.items()):
                        for i, b in enumerate(buckets):
                            le = _fmt_labels(labels, [("le", _num(b))])
                            out.append(f"{full}_bucket{le} {_num(row[i])}")
                        inf = _fmt_labels(labels, [("le", "+Inf")])
                        out.append(f"{full}_bucket{inf} {_num(row[-1])}")
                        out.append(f"{full}_sum{_fmt_labels(labels)} {_num(row[-2])}")
                        out.append(f"{full}_count{_fmt_labels(labels)} {_num(row[-1])}")
                else:
                    for labels, v in sorted(self._values[full].items()):
                        out.append(f"{full}{_fmt_labels(labels)} {_num(v)}")
        return "\n".join(out) + "\n"


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (used by ``dnode status`` and tests)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    return samples


class MetricsServer:
    """``/metrics`` and ``/status`` on 127.0.0.1:port (0 picks a free port)."""

    def __init__(self, metrics: Metrics, status: Callable[[], dict[str, Any]], port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/metrics":
                        body = metrics.render().encode()
                        ctype = "text/plain; version=0.0.4; charset=utf-8"
                    elif path == "/status":
                        body = json.dumps(status(), default=str).encode()
                        ctype = "application/json"
                    else:
                        self.send_error(404)
                        return
                except Exception as e:  # noqa: BLE001 - e.g. the node is shutting down
                    self.send_error(503, f"{type(e).__name__}")
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
