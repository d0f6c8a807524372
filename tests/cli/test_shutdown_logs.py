"""A node's shutdown (SIGTERM cancels its nursery) does not print py-libp2p's trio.Cancelled
tracebacks as errors; real libp2p errors still come through with theirs."""

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
