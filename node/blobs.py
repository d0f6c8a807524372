"""Content-addressed blob exchange over direct libp2p streams (``/dnode/blob/1.0.0``).

Large objects (an HE public context with Galois keys is ~35 MB, ciphertext tensors several
MB) never travel over gossip or the 16 MiB request/response frames: they are streamed in
chunks over one libp2p stream per blob and named by ``keccak256`` of their bytes, so the
receiver checks what it got against the digest it asked for (typically a digest from
on-chain-hashed task parameters).

Wire format (one stream per operation; ``frame`` = 4-byte big-endian length + JSON):

* get: client -> ``frame{"op": "get", "digest": "0x.."}``, half-close;
  server -> ``frame{"ok": true, "size": n}`` + n raw bytes, close;
  or ``frame{"ok": false, "error": "..."}``.
* put: client -> ``frame{"op": "put", "digest": "0x..", "size": n}``; server ->
  ``frame{"ok": true, "ready": true}`` (send it), ``frame{"ok": true, "have": true}`` (done)
  or ``frame{"ok": false, "error": "..."}``; after "ready" the client sends n raw bytes and
  half-closes, the server answers ``frame{"ok": true}`` or a refusal. The server's
  ``accept_push(peer_id, digest, size)`` policy decides before any body byte is sent
  (default: refuse every push), and the body must hash to the digest.

Every failure is logged in one line by the server, which keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path

import trio

from dnode.node.errors import NodeError, P2PError, ProtocolViolation
from dnode.node.transport import ByteStream, Transport

log = logging.getLogger("dnode.blobs")

BLOB_PROTOCOL = "/dnode/blob/1.0.0"
CHUNK = 256 * 1024
MAX_CONTROL_FRAME = 4096
DEFAULT_MAX_BLOB = 256 * 1024 * 1024
_LEN = struct.Struct(">I")

AcceptPush = Callable[[str, bytes, int], Awaitable[bool]]

__all__ = [
    "BLOB_PROTOCOL",
    "BlobDigestMismatch",
    "BlobError",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "blob_digest",
    "fetch_blob",
    "fetch_into",
    "push_blob",
    "serve_blobs",
]


class BlobError(NodeError):
    """A blob could not be stored, served or fetched."""


class BlobNotFound(BlobError):
    pass


class BlobTooLarge(BlobError):
    pass


class BlobDigestMismatch(BlobError):
    pass


def _keccak():  # type: ignore[no-untyped-def]
    from Crypto.Hash import keccak

    return keccak.new(digest_bits=256)


def blob_digest(data: bytes | bytearray | memoryview) -> bytes:
    h = _keccak()
    h.update(bytes(data))
    return h.digest()


def _hex(digest: bytes) -> str:
    return "0x" + digest.hex()


def _parse_digest(s: object) -> bytes:
    if not isinstance(s, str) or not s.startswith("0x") or len(s) != 66:
        raise ValueError("digest must be 0x + 64 hex digits")
    return bytes.fromhex(s[2:])


class BlobStore:
    """A directory of blobs named by their keccak256 hex digest.

    ``put`` verifies and writes atomically (temp file + rename); readers never see a partial
    blob. ``max_blob`` caps each blob. Files are trusted to be what ``put`` wrote: the
    fetching side re-checks digests anyway.
    """

    def __init__(self, root: str | Path, *, max_blob: int = DEFAULT_MAX_BLOB) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_blob = max_blob

    def path(self, digest: bytes) -> Path:
        if len(digest) != 32:
            raise BlobError("a blob digest is 32 bytes")
        return self.root / digest.hex()

    def has(self, digest: bytes) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: bytes) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {_hex(digest)}") from None

    def get(self, digest: bytes) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {_hex(digest)}") from None

    def put(self, data: bytes, digest: bytes | None = None) -> bytes:
        """Store ``data``; if ``digest`` is given it must match. Returns the digest."""
        if len(data) > self.max_blob:
            raise BlobTooLarge(f"blob of {len(data)} bytes exceeds {self.max_blob}")
        actual = blob_digest(data)
        if digest is not None and actual != digest:
            raise BlobDigestMismatch(f"blob hashes to {_hex(actual)}, expected {_hex(digest)}")
        path = self.path(actual)
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return actual

    def delete(self, digest: bytes) -> None:
        self.path(digest).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------
# framing helpers over a ByteStream


async def _read_exactly(stream: ByteStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(min(n - len(buf), CHUNK))
        if not chunk:
            raise ProtocolViolation(stream.peer_id, f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def _write_frame(stream: ByteStream, obj: dict) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    await stream.write(_LEN.pack(len(data)) + data)


async def _read_frame(stream: ByteStream) -> dict:
    (n,) = _LEN.unpack(await _read_exactly(stream, 4))
    if n > MAX_CONTROL_FRAME:
        raise ProtocolViolation(stream.peer_id, f"control frame of {n} bytes")
    try:
        obj = json.loads(await _read_exactly(stream, n))
    except ValueError as e:
        raise ProtocolViolation(stream.peer_id, f"bad control frame: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolViolation(stream.peer_id, "control frame is not an object")
    return obj


def _transfer_timeout(size: int, base: float) -> float:
    return base + size / (1024 * 1024)  # allow >= 1 MiB/s on top of the base timeout


# ------------------------------------------------------------------------------------------
# server


async def _refuse(stream: ByteStream, error: str) -> None:
    with suppress(P2PError):
        await _write_frame(stream, {"ok": False, "error": error})


def serve_blobs(
    host: Transport,
    store: BlobStore,
    *,
    accept_push: AcceptPush | None = None,
    timeout: float = 30.0,
) -> None:
    """Serve ``store`` on ``/dnode/blob/1.0.0`` (gets always; puts only if ``accept_push``)."""

    async def handler(peer: str, stream: ByteStream) -> None:
        try:
            with trio.fail_after(timeout):
                req = await _read_frame(stream)
                op = req.get("op")
                digest = _parse_digest(req.get("digest"))
        except (ProtocolViolation, P2PError, ValueError, trio.TooSlowError) as e:
            log.warning("blob request from %s dropped: %s", peer, e)
            await stream.reset()
            return
        if op == "get":
            await _serve_get(peer, stream, store, digest, timeout)
        elif op == "put":
            await _serve_put(peer, stream, store, digest, req.get("size"), accept_push, timeout)
        else:
            log.warning("blob request from %s: unknown op %r", peer, op)
            await _refuse(stream, f"unknown op {op!r}")

    host.set_stream_handler(BLOB_PROTOCOL, handler)


async def _serve_get(
    peer: str, stream: ByteStream, store: BlobStore, digest: bytes, timeout: float
) -> None:
    path = store.path(digest)
    try:
        f = path.open("rb")
    except FileNotFoundError:
        log.info("blob %s asked by %s: not found", _hex(digest), peer)
        await _refuse(stream, "not found")
        return
    with f:
        size = os.fstat(f.fileno()).st_size
        try:
            with trio.fail_after(_transfer_timeout(size, timeout)):
                await _write_frame(stream, {"ok": True, "size": size})
                sent = 0
                while chunk := f.read(CHUNK):
                    await stream.write(chunk)
                    sent += len(chunk)
                if sent != size:
                    raise BlobError(f"blob {_hex(digest)} changed while being served")
        except (P2PError, BlobError, trio.TooSlowError) as e:
            log.info("serving blob %s to %s failed: %r", _hex(digest), peer, e)
            await stream.reset()
            return
    log.debug("served blob %s (%d bytes) to %s", _hex(digest), size, peer)


async def _serve_put(
    peer: str,
    stream: ByteStream,
    store: BlobStore,
    digest: bytes,
    size: object,
    accept_push: AcceptPush | None,
    timeout: float,
) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        await _refuse(stream, "bad size")
        return
    if size > store.max_blob:
        log.warning("blob push from %s refused: %d bytes > %d", peer, size, store.max_blob)
        await _refuse(stream, f"too large ({size} > {store.max_blob} bytes)")
        return
    if accept_push is None or not await accept_push(peer, digest, size):
        log.info("blob push %s from %s refused by policy", _hex(digest), peer)
        await _refuse(stream, "push not accepted")
        return
    try:
        if store.has(digest):
            await _write_frame(stream, {"ok": True, "have": True})
            return
        await _write_frame(stream, {"ok": True, "ready": True})
        with trio.fail_after(_transfer_timeout(size, timeout)):
            data = await _read_exactly(stream, size)
            if await stream.read(1):
                raise ProtocolViolation(peer, "more bytes than announced")
        store.put(data, digest)
    except BlobError as e:
        log.warning("blob push from %s rejected: %s", peer, e)
        await _refuse(stream, str(e))
        return
    except (ProtocolViolation, P2PError, trio.TooSlowError) as e:
        log.warning("blob push from %s failed: %r", peer, e)
        await stream.reset()
        return
    await _write_frame(stream, {"ok": True})
    log.info("stored pushed blob %s (%d bytes) from %s", _hex(digest), size, peer)


# ------------------------------------------------------------------------------------------
# client


async def fetch_blob(
    host: Transport, peer_id: str, digest: bytes, *, max_size: int, timeout: float = 30.0
) -> bytes:
    """Fetch blob ``digest`` from ``peer_id``; at most ``max_size`` bytes, digest verified.

    Raises BlobNotFound, BlobTooLarge (before reading the body), BlobDigestMismatch, or
    P2PError (network failure / timeout)."""
    stream = await host.open_stream(peer_id, BLOB_PROTOCOL, timeout=timeout)
    ok = False
    try:
        with trio.fail_after(timeout):
            await _write_frame(stream, {"op": "get", "digest": _hex(digest)})
            await stream.close_write()
            head = await _read_frame(stream)
        if head.get("ok") is not True:
            err = str(head.get("error"))[:200]
            if err == "not found":
                raise BlobNotFound(f"peer {peer_id} has no blob {_hex(digest)}")
            raise BlobError(f"peer {peer_id} refused blob {_hex(digest)}: {err}")
        size = head.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProtocolViolation(peer_id, "bad blob size")
        if size > max_size:
            raise BlobTooLarge(
                f"blob {_hex(digest)} from {peer_id} is {size} bytes, limit {max_size}"
            )
        h = _keccak()
        buf = bytearray()
        with trio.fail_after(_transfer_timeout(size, timeout)):
            while len(buf) < size:
                chunk = await stream.read(min(size - len(buf), CHUNK))
                if not chunk:
                    raise ProtocolViolation(peer_id, f"blob EOF after {len(buf)} of {size} bytes")
                h.update(chunk)
                buf += chunk
        if h.digest() != digest:
            raise BlobDigestMismatch(
                f"blob from {peer_id} hashes to {_hex(h.digest())}, expected {_hex(digest)}"
            )
        ok = True
        return bytes(buf)
    except trio.TooSlowError:
        raise P2PError(f"fetching blob {_hex(digest)} from {peer_id} timed out") from None
    except ProtocolViolation as e:
        raise P2PError(f"fetching blob {_hex(digest)} from {peer_id}: {e.detail}") from None
    finally:
        if ok:
            await stream.close()
        else:
            await stream.reset()


async def fetch_into(
    host: Transport,
    peers: list[str],
    digest: bytes,
    store: BlobStore,
    *,
    max_size: int,
    timeout: float = 30.0,
) -> bytes:
    """Fetch ``digest`` from the first of ``peers`` that delivers it, into ``store``."""
    if store.has(digest):
        return digest
    errors = []
    for peer in peers:
        try:
            data = await fetch_blob(host, peer, digest, max_size=max_size, timeout=timeout)
            return store.put(data, digest)
        except (BlobError, P2PError) as e:
            log.info("blob %s from %s: %s", _hex(digest), peer, e)
            errors.append(f"{peer}: {e}")
    raise BlobNotFound(f"blob {_hex(digest)} unavailable: " + "; ".join(errors or ["no peers"]))


async def push_blob(host: Transport, peer_id: str, data: bytes, *, timeout: float = 30.0) -> bytes:
    """Push ``data`` to ``peer_id``'s store (if its policy accepts); returns the digest."""
    digest = blob_digest(data)
    stream = await host.open_stream(peer_id, BLOB_PROTOCOL, timeout=timeout)
    ok = False
    try:
        with trio.fail_after(_transfer_timeout(len(data), timeout)):
            await _write_frame(stream, {"op": "put", "digest": _hex(digest), "size": len(data)})
            reply = await _read_frame(stream)
            if reply.get("ok") is True and reply.get("ready") is True:
                mv = memoryview(data)
                for i in range(0, len(data), CHUNK):
                    await stream.write(bytes(mv[i : i + CHUNK]))
                await stream.close_write()
                reply = await _read_frame(stream)
        if reply.get("ok") is not True:
            raise BlobError(f"peer {peer_id} refused blob push: {str(reply.get('error'))[:200]}")
        ok = True
        return digest
    except trio.TooSlowError:
        raise P2PError(f"pushing blob {_hex(digest)} to {peer_id} timed out") from None
    except ProtocolViolation as e:
        raise P2PError(f"pushing blob to {peer_id}: {e.detail}") from None
    finally:
        if ok:
            await stream.close()
        else:
            await stream.reset()
