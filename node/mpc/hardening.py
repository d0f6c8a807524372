"""Patches to MPyC's runtime so no byte a peer sends can run code or pick its identity.

MPyC (0.11) marshals ``Runtime.transfer`` and the numpy paths of ``output``, ``input`` and
``_reshare`` with :mod:`pickle`: any party could make every other party execute code by
sending a crafted pickle (finding 1 of issue 13).  :func:`harden` swaps the ``pickle`` name
in ``mpyc.runtime`` for :class:`StrictCodec`, a fixed-format encoding of the only values
those paths carry (ints, floats, strings, bytes, None/bools, lists/tuples/dicts of them, and
integer numpy arrays).  Decoding never instantiates a class chosen by the sender and checks
every length against the bytes actually received.

It also replaces ``MessageExchanger.data_received`` by a strict version: the peer id a
client announces must be a lower seat that is not connected yet (MPyC otherwise lets a later
connection silently replace an earlier one), and a frame may not announce more than
:data:`MAX_PAYLOAD` bytes.  The tunnel (:mod:`node.tunnel`) already binds a stream to the
seat it authenticated; this is the second line for anything that reaches the local port.

Any violation ends the party at once with exit code :data:`VIOLATION_EXIT` and a one-line
reason on stderr (MPyC swallows exceptions raised in protocol callbacks and would otherwise
hang until the deadline); the executor turns that into an ``MpcError`` and the node retries
in its next slot or declines.
"""

from __future__ import annotations

import math
import os
import struct
import sys
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = [
    "secure_party",
    "MAX_INT_BYTES",
    "MAX_PAYLOAD",
    "VIOLATION_EXIT",
    "CodecError",
    "StrictCodec",
    "harden",
]

VIOLATION_EXIT = 5
MAX_PAYLOAD = 1 << 30  # one MPyC frame; a 1M-value reshare of 90-bit shares is ~16 MB
MAX_INT_BYTES = 1024  # 8192-bit integers: far above any field dnode uses
MAX_DEPTH = 16


class CodecError(ValueError):
    """Bytes that are not a well-formed :class:`StrictCodec` message."""


# tags (one byte each)
_NONE, _TRUE, _FALSE = b"N", b"T", b"F"
_INT, _FLOAT, _STR, _BYTES = b"i", b"f", b"s", b"b"
_LIST, _TUPLE, _DICT, _ARRAY = b"l", b"t", b"d", b"a"
_ARR_OBJ, _ARR_I64 = b"O", b"q"
_MAGIC = b"DNC1"


def _int_bytes(v: int) -> bytes:
    n = (v.bit_length() + 8) // 8  # room for the sign bit
    if n > MAX_INT_BYTES:
        raise CodecError(f"integer of {n} bytes exceeds {MAX_INT_BYTES}")
    return v.to_bytes(n, "little", signed=True)


class StrictCodec:
    """``dumps``/``loads`` with pickle's call shape, for the values MPyC's wire paths carry."""

    @classmethod
    def dumps(cls, obj: Any) -> bytes:
        out = bytearray(_MAGIC)
        cls._enc(obj, out, 0)
        return bytes(out)

    @classmethod
    def _enc(cls, obj: Any, out: bytearray, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise CodecError("nesting too deep")
        if obj is None:
            out += _NONE
        elif obj is True:
            out += _TRUE
        elif obj is False:
            out += _FALSE
        elif isinstance(obj, int):
            b = _int_bytes(int(obj))
            out += _INT + struct.pack("<H", len(b)) + b
        elif isinstance(obj, float):
            out += _FLOAT + struct.pack("<d", obj)
        elif isinstance(obj, str):
            b = obj.encode("utf-8")
            out += _STR + struct.pack("<I", len(b)) + b
        elif isinstance(obj, bytes | bytearray):
            out += _BYTES + struct.pack("<I", len(obj)) + bytes(obj)
        elif isinstance(obj, list | tuple):
            out += (_LIST if isinstance(obj, list) else _TUPLE) + struct.pack("<I", len(obj))
            for x in obj:
                cls._enc(x, out, depth + 1)
        elif isinstance(obj, dict):
            out += _DICT + struct.pack("<I", len(obj))
            for k, v in obj.items():
                cls._enc(k, out, depth + 1)
                cls._enc(v, out, depth + 1)
        elif type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray":
            cls._enc_array(obj, out)
        elif hasattr(obj, "value") and hasattr(type(obj), "modulus"):  # a field element
            cls._enc(int(obj.value), out, depth)
        else:
            raise CodecError(f"cannot encode {type(obj).__name__}")

    @staticmethod
    def _enc_array(a: Any, out: bytearray) -> None:
        import numpy as np

        if a.ndim > 8:
            raise CodecError("array of more than 8 dimensions")
        head = struct.pack("<B", a.ndim) + b"".join(struct.pack("<Q", d) for d in a.shape)
        flat = a.reshape(-1)
        if a.dtype == object:
            vals = [int(v) for v in flat]
            w = max([(v.bit_length() + 8) // 8 for v in vals] or [1])
            if w > MAX_INT_BYTES:
                raise CodecError(f"array element of {w} bytes exceeds {MAX_INT_BYTES}")
            out += _ARRAY + _ARR_OBJ + head + struct.pack("<H", w)
            out += b"".join(v.to_bytes(w, "little", signed=True) for v in vals)
        elif np.issubdtype(a.dtype, np.integer):
            out += _ARRAY + _ARR_I64 + head + flat.astype("<i8").tobytes()
        else:
            raise CodecError(f"cannot encode an array of dtype {a.dtype}")

    @classmethod
    def loads(cls, data: bytes | bytearray | memoryview) -> Any:
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise CodecError("not a dnode codec message (a pickle?)")
        obj, pos = cls._dec(data, len(_MAGIC), 0)
        if pos != len(data):
            raise CodecError(f"{len(data) - pos} trailing bytes")
        return obj

    @staticmethod
    def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
        if n < 0 or pos + n > len(data):
            raise CodecError(f"truncated message (need {n} bytes at offset {pos})")
        return data[pos : pos + n], pos + n

    @classmethod
    def _count(cls, data: bytes, pos: int, fmt: str) -> tuple[int, int]:
        raw, pos = cls._take(data, pos, struct.calcsize(fmt))
        return struct.unpack(fmt, raw)[0], pos

    @classmethod
    def _dec(cls, data: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise CodecError("nesting too deep")
        tag, pos = cls._take(data, pos, 1)
        if tag == _NONE:
            return None, pos
        if tag == _TRUE:
            return True, pos
        if tag == _FALSE:
            return False, pos
        if tag == _INT:
            n, pos = cls._count(data, pos, "<H")
            if not 0 < n <= MAX_INT_BYTES:
                raise CodecError(f"integer of {n} bytes")
            raw, pos = cls._take(data, pos, n)
            return int.from_bytes(raw, "little", signed=True), pos
        if tag == _FLOAT:
            raw, pos = cls._take(data, pos, 8)
            return struct.unpack("<d", raw)[0], pos
        if tag in (_STR, _BYTES):
            n, pos = cls._count(data, pos, "<I")
            raw, pos = cls._take(data, pos, n)
            if tag == _BYTES:
                return raw, pos
            try:
                return raw.decode("utf-8"), pos
            except UnicodeDecodeError as e:
                raise CodecError(f"bad utf-8: {e}") from None
        if tag in (_LIST, _TUPLE, _DICT):
            n, pos = cls._count(data, pos, "<I")
            if n > len(data) - pos:  # every item takes >= 1 byte: no huge allocations
                raise CodecError(f"{n} items announced, {len(data) - pos} bytes left")
            if tag == _DICT:
                d = {}
                for _ in range(n):
                    k, pos = cls._dec(data, pos, depth + 1)
                    if not isinstance(k, int | str | bytes | tuple) and k is not None:
                        raise CodecError(f"unhashable dict key {type(k).__name__}")
                    d[k], pos = cls._dec(data, pos, depth + 1)
                return d, pos
            items = []
            for _ in range(n):
                x, pos = cls._dec(data, pos, depth + 1)
                items.append(x)
            return (items if tag == _LIST else tuple(items)), pos
        if tag == _ARRAY:
            return cls._dec_array(data, pos)
        raise CodecError(f"unknown tag {tag!r}")

    @classmethod
    def _dec_array(cls, data: bytes, pos: int) -> tuple[Any, int]:
        import numpy as np

        kind, pos = cls._take(data, pos, 1)
        ndim, pos = cls._count(data, pos, "<B")
        if ndim > 8:
            raise CodecError("array of more than 8 dimensions")
        shape = []
        for _ in range(ndim):
            d, pos = cls._count(data, pos, "<Q")
            shape.append(d)
        count = math.prod(shape)
        if kind == _ARR_OBJ:
            w, pos = cls._count(data, pos, "<H")
            if not 0 < w <= MAX_INT_BYTES:
                raise CodecError(f"array element width {w}")
            raw, pos = cls._take(data, pos, count * w)
            fb = int.from_bytes
            vals = [fb(raw[i : i + w], "little", signed=True) for i in range(0, count * w, w)]
            a = np.empty(count, dtype=object)
            a[:] = vals
            return a.reshape(shape), pos
        if kind == _ARR_I64:
            raw, pos = cls._take(data, pos, count * 8)
            return np.frombuffer(raw, dtype="<i8").astype(np.int64).reshape(shape), pos
        raise CodecError(f"unknown array kind {kind!r}")


def _die(msg: str) -> NoReturn:
    print(f"dnode-mpc: protocol violation: {msg}", file=sys.stderr, flush=True)
    os._exit(VIOLATION_EXIT)


class _GuardedCodec:
    """What ``mpyc.runtime.pickle`` becomes: encode strictly, and treat undecodable peer
    bytes as a violation (an exception raised inside an MPyC coroutine may never surface)."""

    def __init__(self, on_violation: Callable[[str], Any]) -> None:
        self._on_violation = on_violation

    def dumps(self, obj: Any) -> bytes:
        return StrictCodec.dumps(obj)

    def loads(self, data: bytes) -> Any:
        try:
            return StrictCodec.loads(data)
        except CodecError as e:
            self._on_violation(f"undecodable message from a peer: {e}")
            raise


def _strict_data_received(on_violation: Callable[[str], Any]) -> Callable[[Any, bytes], None]:
    """MessageExchanger.data_received with the peer id and frame sizes checked."""

    def data_received(self: Any, chunk: bytes) -> None:
        self.bytes.extend(chunk)
        data = self.bytes
        rt = self.runtime
        if self.peer_pid is None:  # we are the server: the client announces its pid
            if len(data) < 2:
                return
            peer_pid = int.from_bytes(data[:2], "little")
            if not 0 <= peer_pid < rt.pid:
                on_violation(f"a client announced party {peer_pid} to party {rt.pid}")
                self.transport.close()
                return
            if rt.parties[peer_pid].protocol is not None:
                on_violation(f"a second connection announced party {peer_pid}")
                self.transport.close()
                return
            len_packet = 0 if rt.options.no_prss else rt._prss_keys_from_peer(peer_pid)
            if len(data) < len_packet + 2:
                return
            self.peer_pid = peer_pid
            del data[:2]
            if not rt.options.no_prss:
                rt._prss_keys_from_peer(peer_pid, data)
                del data[:len_packet]
            rt.set_protocol(self.peer_pid, self)
        while len(data) >= 12:
            pc, payload_size = struct.unpack_from("<qI", data)
            if payload_size > MAX_PAYLOAD:
                on_violation(f"party {self.peer_pid} announced a {payload_size}-byte message")
                self.transport.close()
                return
            len_packet = payload_size + 12
            if len(data) < len_packet:
                break
            payload = bytes(data[12:len_packet])
            del data[:len_packet]
            if pc in self.buffers:
                fut = self.buffers.pop(pc)
                if not hasattr(fut, "set_result"):
                    on_violation(f"party {self.peer_pid} sent two messages for one step")
                    return
                fut.set_result(payload)
            else:
                self.buffers[pc] = payload
        self.bytes = data

    return data_received


def _checked_connection(
    cls: Any, local_check: Callable[[Any], bool]
) -> tuple[Callable[[Any, Any], None], Callable[[Any, Any], None]]:
    """connection_made / connection_lost that drop incoming connections failing
    ``local_check`` (e.g. from another local user) before a byte is read from them."""
    made, lost = cls.connection_made, cls.connection_lost

    def connection_made(self: Any, transport: Any) -> None:
        if self.peer_pid is None and not local_check(transport.get_extra_info("socket")):
            print("dnode-mpc: refused a local connection (not this user)", file=sys.stderr)
            transport.abort()
            return
        made(self, transport)

    def connection_lost(self: Any, exc: Any) -> None:
        if self.peer_pid is None:  # refused above, or closed before announcing a party id
            return
        lost(self, exc)

    return connection_made, connection_lost


def secure_party(job_path: str, deadline: float | None) -> Callable[[Any], None]:
    """The one call a party process makes before importing MPyC: confine the process now
    (:mod:`node.mpc.isolation`, job directory = the job file's), and return the function that
    patches ``mpyc.runtime`` once imported (:func:`harden` with the same-user check)."""
    from pathlib import Path

    from dnode import IMPORT_ROOT
    from dnode.node import localpeer
    from dnode.node.mpc import isolation

    tables = localpeer.open_tables()  # read later: the sandbox closes /proc
    code_root = Path(IMPORT_ROOT)
    cpu = None if deadline is None else math.ceil(deadline) + 30
    where = os.path.dirname(os.path.abspath(job_path))
    summary = isolation.confine(where, code_root, isolation.PartyLimits(cpu_seconds=cpu))
    print(f"dnode-mpc: {summary}", file=sys.stderr, flush=True)

    def patch(runtime_module: Any) -> None:
        harden(runtime_module, local_check=lambda s: localpeer.same_user(s, tables))

    return patch


def harden(
    runtime_module: Any,
    on_violation: Callable[[str], Any] = _die,
    local_check: Callable[[Any], bool] | None = None,
) -> None:
    """Patch the imported ``mpyc.runtime`` module (and its ``asyncoro``) in place.

    Call once in the party process after ``import mpyc.runtime`` and before ``mpc.start()``.
    ``local_check(socket)``: admit an incoming connection only if it returns True (the party
    passes :func:`node.localpeer.same_user`).
    """
    exchanger = runtime_module.asyncoro.MessageExchanger
    runtime_module.pickle = _GuardedCodec(on_violation)
    exchanger.data_received = _strict_data_received(on_violation)
    if local_check is not None:
        exchanger.connection_made, exchanger.connection_lost = _checked_connection(
            exchanger, local_check
        )
