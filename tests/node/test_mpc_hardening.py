"""Unit tests of node.mpc.hardening: the strict codec that replaces pickle on MPyC's wire,
and the pid checks of the patched MessageExchanger (in-process; the attacks through real
tunnels are in test_mpc_attacks.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnode.node.mpc.hardening import MAX_INT_BYTES, CodecError, StrictCodec

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.binary()
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple),
    max_leaves=20,
)


@given(values)
def test_roundtrip_keeps_types(v):
    assert StrictCodec.loads(StrictCodec.dumps(v)) == v
    assert type(StrictCodec.loads(StrictCodec.dumps(v))) is type(v)


def test_arrays_roundtrip():
    big = np.array([[2**89 + 5, 7], [0, 2**90 - 1]], dtype=object)
    out = StrictCodec.loads(StrictCodec.dumps(big))
    assert out.dtype == object and out.shape == (2, 2) and (out == big).all()
    small = np.arange(12, dtype=np.int64).reshape(3, 4)
    out = StrictCodec.loads(StrictCodec.dumps(small))
    assert out.dtype == np.int64 and (out == small).all()


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle ran')",))


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps(_Boom()),
        pickle.dumps((1, 2)),
        b"DNC1",
        b"DNC1l\xff\xff\xff\xff",  # 4G items announced
        b"DNC1i\x00\x00",  # zero-length int
        b"DNC1i" + (MAX_INT_BYTES + 1).to_bytes(2, "little") + b"\x01" * (MAX_INT_BYTES + 1),
        b"DNC1aO\x01" + (10**6).to_bytes(8, "little") + b"\x10\x00",  # short array body
        StrictCodec.dumps([1, 2]) + b"x",  # trailing bytes
        b"DNC1Z",
    ],
)
def test_malformed_or_pickled_input_is_rejected(data):
    with pytest.raises(CodecError):
        StrictCodec.loads(data)


def test_objects_are_not_encoded():
    with pytest.raises(CodecError):
        StrictCodec.dumps(_Boom())


def _exchanger(own_pid: int, connected: set[int]):
    """A server-side MPyC MessageExchanger of party ``own_pid`` with the strict patch."""
    from types import SimpleNamespace

    from mpyc import asyncoro

    from dnode.node.mpc.hardening import harden

    class Exchanger(asyncoro.MessageExchanger):
        pass

    violations: list[str] = []
    harden(SimpleNamespace(asyncoro=SimpleNamespace(MessageExchanger=Exchanger)), violations.append)
    parties = [SimpleNamespace(protocol=object() if j in connected else None) for j in range(4)]
    rt = SimpleNamespace(
        pid=own_pid, parties=parties, options=SimpleNamespace(no_prss=True), set_protocol=print
    )
    ex = Exchanger(rt)
    ex.transport = SimpleNamespace(close=lambda: violations.append("closed"))
    return ex, violations


@pytest.mark.parametrize(
    ("own", "connected", "claimed"),
    [(1, set(), 1), (1, set(), 3), (2, {0}, 0), (0, set(), 0)],
)
def test_a_client_cannot_claim_its_own_a_higher_or_a_connected_seat(own, connected, claimed):
    ex, violations = _exchanger(own, connected)
    ex.data_received(claimed.to_bytes(2, "little"))
    assert violations and violations[-1] == "closed", violations
    assert ex.peer_pid is None


def test_oversized_frames_are_a_violation():
    ex, violations = _exchanger(2, {0})
    frame = (5).to_bytes(8, "little") + (2**31).to_bytes(4, "little")
    ex.data_received((1).to_bytes(2, "little") + frame)
    assert ex.peer_pid == 1 and violations[-1] == "closed"
