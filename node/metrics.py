"""Prometheus metrics and a JSON status page for a running node.

The daemon updates values from its trio thread; several are mirrored from counts kept
elsewhere (RPC statistics, the chain follower), so the values live here and reach
``prometheus_client`` through a custom collector (its documented pattern for such values);
the library writes the exposition format. A small ``http.server`` in a daemon thread, bound
to 127.0.0.1, serves ``/metrics`` and ``/status`` (the JSON ``dnode status`` prints). Reads
and writes share one lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]

# seconds: an MPC session on loopback takes ~1-10 s, HE evaluation up to minutes
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


def _labels(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


class Metrics:
    """Counters, gauges and histograms, each with optional labels."""

    def __init__(self, prefix: str = "dnode_") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._meta: dict[str, tuple[str, str]] = {}  # name -> (type, help)
        self._values: dict[str, dict[Labels, float]] = {}
        self._hist: dict[str, tuple[tuple[float, ...], dict[Labels, list[float]]]] = {}
        self._collectors: list[Callable[[], None]] = []
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

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
        """The Prometheus text exposition of every metric (collectors run first)."""
        for fn in self._collectors:
            fn()
        return generate_latest(self._registry).decode()

    def collect(self) -> Iterator[Metric]:
        """``prometheus_client``'s collector interface: one family per declared metric."""
        with self._lock:
            for full, (kind, help) in sorted(self._meta.items()):
                if kind == "histogram":
                    buckets, hseries = self._hist[full]
                    names = _label_names(hseries)
                    h = HistogramMetricFamily(full, help, labels=names)
                    for labels, row in sorted(hseries.items()):
                        pairs = [(_le(b), row[i]) for i, b in enumerate(buckets)]
                        h.add_metric(
                            _label_values(labels, names), [*pairs, ("+Inf", row[-1])], row[-2]
                        )
                    yield h
                    continue
                series = self._values[full]
                names = _label_names(series)
                fam: CounterMetricFamily | GaugeMetricFamily
                if kind == "counter":
                    fam = CounterMetricFamily(full, help, labels=names)
                else:
                    fam = GaugeMetricFamily(full, help, labels=names)
                for labels, v in sorted(series.items()):
                    fam.add_metric(_label_values(labels, names), v)
                yield fam


def _label_names(series: dict[Labels, Any]) -> list[str]:
    return sorted({k for labels in series for k, _ in labels})


def _label_values(labels: Labels, names: list[str]) -> list[str]:
    d = dict(labels)
    return [d.get(n, "") for n in names]


def _le(bound: float) -> str:
    return repr(float(bound))


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample (used by ``dnode status`` and tests); labels
    in name order, as ``prometheus_client``'s parser reads them (``le="1.0"``)."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[s.name + (f"{{{labels}}}" if labels else "")] = float(s.value)
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
                        ctype = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes
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
