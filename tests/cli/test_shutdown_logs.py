"""A node's shutdown (SIGTERM cancels its nursery) does not print py-libp2p's trio.Cancelled
tracebacks as errors; real libp2p errors still come through with theirs. A peer that answers
"na" to a protocol (an owner agent asked for params) is not an error either."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import trio

from dnode.cli.node import use_log_format


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    root.handlers[:] = [logging.StreamHandler(out)]
    root.setLevel(logging.WARNING)
    use_log_format("text")
    yield out
    root.handlers[:], root.level = saved[0], saved[1]
    for h in logging.getLogger("libp2p").handlers[:]:
        if h not in saved[0]:
            logging.getLogger("libp2p").removeHandler(h)


def _log_with(exc: BaseException, name: str = "libp2p.network.swarm") -> None:
    try:
        raise exc
    except BaseException:
        logging.getLogger(name).exception("stream handler failed")


def test_cancelled_tracebacks_from_libp2p_are_shutdown_noise(root_stream: io.StringIO) -> None:
    _log_with(trio.Cancelled._create())
    _log_with(BaseExceptionGroup("tasks", [trio.Cancelled._create(), trio.Cancelled._create()]))
    assert root_stream.getvalue() == ""


def test_real_errors_keep_their_traceback(root_stream: io.StringIO) -> None:
    _log_with(ConnectionResetError("peer went away"))
    _log_with(BaseExceptionGroup("tasks", [trio.Cancelled._create(), ValueError("bad frame")]))
    _log_with(trio.Cancelled._create(), name="dnode.node")  # ours: not filtered
    text = root_stream.getvalue()
    assert text.count("stream handler failed") == 3
    assert "ConnectionResetError" in text and "ValueError: bad frame" in text
    assert "Traceback" in text


def _open_failed(error: str) -> None:
    """py-libp2p 0.8.1's record when a stream cannot be opened (basic_host.new_stream)."""
    logging.getLogger("libp2p.host.basic_host").error(
        "Failed to open stream to peer 12D3KooWQaYx:\n"
        f"  Error: {error}\n"
        "  Protocols: ['/dnode/params/1.0.0']\n"
        "  Timeout: 30s\n"
        "  Connection: established\n"
        "  Connection State: established=True, handshake=True\n"
        "  Registry Stats: None"
    )


def test_a_protocol_the_peer_does_not_serve_is_not_an_error(root_stream: io.StringIO) -> None:
    _open_failed(
        "protocols not supported: tried ['/dnode/params/1.0.0'], timeout=10s. Last error: "
        "protocol not supported: /dnode/params/1.0.0, response='na'"
    )
    assert root_stream.getvalue() == ""
    _open_failed("response timed out after 10s, protocols tried: ['/dnode/shares/1.0.0']")
    text = root_stream.getvalue()
    assert "Failed to open stream" in text and "timed out" in text  # a real failure stays


def test_with_debug_logging_the_refusal_is_one_debug_line(root_stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    _open_failed("protocol not supported: /dnode/join/1.0.0, response='na'")
    (line,) = root_stream.getvalue().splitlines()
    assert line == "Failed to open stream to peer 12D3KooWQaYx: (protocol not served)"
