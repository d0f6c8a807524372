"""The metrics registry's text exposition and its HTTP endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from dnode.node.metrics import Metrics, MetricsServer, parse_metrics


def test_exposition_format() -> None:
    m = Metrics()
    m.counter("calls_total", "Calls.")
    m.gauge("tasks", "Tasks by state.")
    m.histogram("run_seconds", "Run time.", buckets=(1, 5))
    m.inc("calls_total")
    m.inc("calls_total", 2)
    m.replace("tasks", {"closed": 2, "computing": 1}, "state")
    m.replace("tasks", {"closed": 3}, "state")  # a family is replaced whole
    for v in (0.5, 2, 7):
        m.observe("run_seconds", v)
    text = m.render()
    assert "# TYPE dnode_calls_total counter" in text
    assert "# HELP dnode_run_seconds Run time." in text
    got = parse_metrics(text)
    assert got["dnode_calls_total"] == 3
    assert got['dnode_tasks{state="closed"}'] == 3
    assert 'dnode_tasks{state="computing"}' not in got
    # buckets are cumulative; +Inf equals the count
    assert got['dnode_run_seconds_bucket{le="1.0"}'] == 1
    assert got['dnode_run_seconds_bucket{le="5.0"}'] == 2
    assert got['dnode_run_seconds_bucket{le="+Inf"}'] == 3
    assert got["dnode_run_seconds_count"] == 3 and got["dnode_run_seconds_sum"] == 9.5


def test_server_on_loopback() -> None:
    m = Metrics()
    m.gauge("head_block", "Head.")
    m.on_collect(lambda: m.set("head_block", 42))  # refreshed per scrape
    server = MetricsServer(m, lambda: {"peer_id": "p"}, 0).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert parse_metrics(r.read().decode())["dnode_head_block"] == 42
        with urllib.request.urlopen(server.url + "/status", timeout=5) as r:
            assert json.loads(r.read()) == {"peer_id": "p"}
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url + "/nope", timeout=5)
        assert info.value.code == 404
    finally:
        server.stop()
