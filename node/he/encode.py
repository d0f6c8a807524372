"""Encrypted tensors: data files -> ciphertexts -> one canonical, content-addressed blob.

Layout. A logical tensor (0-, 1- or 2-D) is stored as ``rows`` physical rows (see
:class:`node.he.params.TensorSpec`); each physical row is split into ``chunks`` ciphertexts
of ``width`` slots (``width <= N/2``), the last one zero-padded, so every ciphertext of a
tensor has the same size and chunk-wise operations need no alignment. A tensor stored in
``"F"`` order has physical rows = logical columns (``he.transpose`` only flips this tag).

Blob format (all integers big-endian)::

    b"DNHE" | u8 version=1 | u32 header_len | header (canonical JSON) |
    u32 count | count x (u32 len | TenSEAL-serialized CKKSVector/BFVVector)

``header = {"v", "scheme", "shape", "order", "rows", "chunks", "width", "post"}``; ``post``
is ``null`` or ``{"divide": n}`` (BFV mean: the requester divides the decrypted sum). The
digest of a blob is ``keccak256(blob)``; nodes check it before use, the chain attests it.
"""

from __future__ import annotations

import csv
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnode.node.he.errors import BlobTooLarge, HeDataError, MalformedBlob
from dnode.node.he.params import HeParams, TensorSpec

MAGIC = b"DNHE"
VERSION = 1
MAX_HEADER = 4096
MAX_CIPHERTEXTS = 65536
DEFAULT_MAX_TENSOR_BYTES = 512 * 1024 * 1024
MAX_DATA_VALUES = 50_000_000
_U32 = struct.Struct(">I")


def keccak256(data: bytes | bytearray | memoryview) -> bytes:
    from Crypto.Hash import keccak

    return keccak.new(data=bytes(data), digest_bits=256).digest()


@dataclass(frozen=True)
class TensorHeader:
    scheme: str
    shape: tuple[int, ...]
    order: str
    rows: int
    chunks: int
    width: int
    post: dict[str, Any] | None = None

    @property
    def spec(self) -> TensorSpec:
        return TensorSpec(self.shape, self.order)

    @property
    def count(self) -> int:
        return self.rows * self.chunks

    def to_json(self) -> bytes:
        d = {
            "v": VERSION,
            "scheme": self.scheme,
            "shape": list(self.shape),
            "order": self.order,
            "rows": self.rows,
            "chunks": self.chunks,
            "width": self.width,
            "post": self.post,
        }
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TensorHeader:
        try:
            d = json.loads(raw)
            if not isinstance(d, dict) or d.get("v") != VERSION:
                raise ValueError("unsupported header version")
            if set(d) != {"v", "scheme", "shape", "order", "rows", "chunks", "width", "post"}:
                raise ValueError("unexpected header fields")
            ints = [d["rows"], d["chunks"], d["width"], *d["shape"]]
            if any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in ints):
                raise ValueError("sizes must be positive integers")
            post = d["post"]
            if post is not None and not (
                isinstance(post, dict)
                and set(post) == {"divide"}
                and isinstance(post["divide"], int)
                and post["divide"] >= 1
            ):
                raise ValueError("bad post-processing field")
            h = cls(
                d["scheme"], tuple(d["shape"]), d["order"], d["rows"], d["chunks"], d["width"], post
            )
            spec = h.spec  # validates shape and order
        except MalformedBlob:
            raise
        except Exception as e:  # noqa: BLE001 - json / type errors of all sorts
            raise MalformedBlob(f"bad tensor header: {e}") from None
        if h.scheme not in ("ckks", "bfv"):
            raise MalformedBlob(f"bad tensor header: scheme {h.scheme!r}")
        if h.to_json() != raw:
            raise MalformedBlob("tensor header is not in canonical form")
        rows, cols = spec.physical
        if h.rows != rows or h.count > MAX_CIPHERTEXTS or h.chunks * h.width < cols:
            raise MalformedBlob(f"tensor header layout inconsistent with shape {h.shape}")
        return h


@dataclass(frozen=True)
class TensorBlob:
    header: TensorHeader
    ciphertexts: list[bytes] = field(repr=False)

    def pack(self) -> bytes:
        if len(self.ciphertexts) != self.header.count:
            raise MalformedBlob("ciphertext count does not match the header")
        h = self.header.to_json()
        parts = [MAGIC, bytes([VERSION]), _U32.pack(len(h)), h, _U32.pack(len(self.ciphertexts))]
        for c in self.ciphertexts:
            parts += [_U32.pack(len(c)), c]
        return b"".join(parts)

    @classmethod
    def unpack(cls, blob: bytes, max_size: int = DEFAULT_MAX_TENSOR_BYTES) -> TensorBlob:
        """Parse the container (not the ciphertexts: see node.he.validate); never trusts sizes."""
        if len(blob) > max_size:
            raise BlobTooLarge(f"tensor blob of {len(blob)} bytes exceeds {max_size}")
        mv = memoryview(blob)
        pos = 0

        def take(n: int, what: str) -> memoryview:
            nonlocal pos
            if n < 0 or pos + n > len(mv):
                raise MalformedBlob(f"tensor blob truncated in {what}")
            out = mv[pos : pos + n]
            pos += n
            return out

        if bytes(take(4, "magic")) != MAGIC or take(1, "version")[0] != VERSION:
            raise MalformedBlob("not a dnode HE tensor blob (bad magic/version)")
        (hlen,) = _U32.unpack(take(4, "header length"))
        if hlen > MAX_HEADER:
            raise MalformedBlob("tensor header too long")
        header = TensorHeader.from_json(bytes(take(hlen, "header")))
        (count,) = _U32.unpack(take(4, "count"))
        if count != header.count:
            raise MalformedBlob(f"{count} ciphertexts, header says {header.count}")
        cts = []
        for i in range(count):
            (n,) = _U32.unpack(take(4, f"length of ciphertext {i}"))
            cts.append(bytes(take(n, f"ciphertext {i}")))
        if pos != len(mv):
            raise MalformedBlob("trailing bytes after the last ciphertext")
        return cls(header, cts)


# ------------------------------------------------------------------------------------------
# layout helpers (plain numpy; shared by encryption, evaluation and decryption)


def layout_for(spec: TensorSpec, slots: int) -> tuple[int, int, int]:
    """(rows, chunks, width) of a fresh tensor."""
    rows, cols = spec.physical
    width = min(cols, slots)
    return rows, math.ceil(cols / width), width


def to_physical(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Logical array -> 2-D physical (rows x columns) array."""
    a = np.asarray(arr)
    if a.shape != spec.shape:
        raise ValueError(f"array shape {a.shape} != tensor shape {spec.shape}")
    rows, cols = spec.physical
    if a.ndim == 2 and spec.order == "F":
        a = a.T
    return np.ascontiguousarray(a.reshape(rows, cols))


def from_physical(phys: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if len(spec.shape) == 2 and spec.order == "F":
        return phys.T.reshape(spec.shape).copy()
    return phys.reshape(spec.shape)


def chunk_rows(phys: np.ndarray, chunks: int, width: int) -> list[np.ndarray]:
    """Physical array -> list (row-major) of zero-padded chunks of ``width`` values."""
    rows, cols = phys.shape
    padded = np.zeros((rows, chunks * width), dtype=phys.dtype)
    padded[:, :cols] = phys
    return [padded[r, c * width : (c + 1) * width] for r in range(rows) for c in range(chunks)]


# ------------------------------------------------------------------------------------------
# data files


def read_data_file(path: str | Path, *, max_values: int = MAX_DATA_VALUES) -> np.ndarray:
    """A CSV (commas or whitespace) of numbers: one line -> vector, several -> matrix; or .npy.

    A single column of many lines is read as a vector (one value per line)."""
    p = Path(path)
    try:
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            rows: list[list[float]] = []
            with p.open(newline="") as f:
                for lineno, line in enumerate(f, 1):
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    cells = next(csv.reader([line])) if "," in line else line.split()
                    try:
                        rows.append([float(c) for c in cells if c.strip() != ""])
                    except ValueError:
                        if not rows:  # a header line
                            continue
                        raise HeDataError(str(p), f"line {lineno}: not a number") from None
            if not rows:
                raise HeDataError(str(p), "no numbers")
            widths = {len(r) for r in rows}
            if len(widths) != 1:
                raise HeDataError(str(p), "rows have different numbers of columns")
            arr = np.array(rows, dtype=np.float64)
            if arr.shape[0] == 1:
                arr = arr[0]
            elif arr.shape[1] == 1:
                arr = arr[:, 0]
    except HeDataError:
        raise
    except (OSError, ValueError) as e:
        raise HeDataError(str(p), str(e)) from None
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise HeDataError(str(p), f"expected a vector or a matrix, got shape {arr.shape}")
    if arr.size > max_values:
        raise HeDataError(str(p), f"{arr.size} values exceed the limit of {max_values}")
    if not np.all(np.isfinite(arr)):
        raise HeDataError(str(p), "contains NaN or infinite values")
    return arr


def encrypt_array(
    ctx: Any, params: HeParams, arr: np.ndarray, *, order: str = "C", source: str = "<array>"
) -> bytes:
    """Encrypt ``arr`` under ``ctx`` (a TenSEAL context with a public key) into a tensor blob."""
    import tenseal as ts

    a = np.asarray(arr)
    if params.scheme == "bfv":
        if not np.all(a == np.round(a)):
            raise HeDataError(source, "BFV encrypts integers; use CKKS for real numbers")
        a = a.astype(np.int64)
        half = params.plain_modulus // 2
        if np.any(np.abs(a) >= half):
            raise HeDataError(source, f"BFV values must lie within +-{half} (plain modulus)")
    else:
        a = a.astype(np.float64)
    spec = TensorSpec(a.shape, order if a.ndim == 2 else "C")
    rows, chunks, width = layout_for(spec, params.slots)
    header = TensorHeader(params.scheme, spec.shape, spec.order, rows, chunks, width)
    make = ts.ckks_vector if params.scheme == "ckks" else ts.bfv_vector
    cts = [
        make(ctx, c.tolist()).serialize() for c in chunk_rows(to_physical(a, spec), chunks, width)
    ]
    return TensorBlob(header, cts).pack()


def decrypt_blob(secret_ctx: Any, blob: bytes) -> np.ndarray:
    """Decrypt a tensor blob with the requester's secret context; returns the logical array."""
    import tenseal as ts

    from dnode.node.he.errors import convert_errors

    t = TensorBlob.unpack(blob)
    h = t.header
    load = ts.ckks_vector_from if h.scheme == "ckks" else ts.bfv_vector_from
    rows, cols = h.spec.physical
    phys = np.zeros((rows, h.chunks * h.width), dtype=np.float64)
    with convert_errors("result ciphertext"):
        for i, raw in enumerate(t.ciphertexts):
            vals = load(secret_ctx, raw).decrypt()
            r, c = divmod(i, h.chunks)
            n = min(len(vals), h.width)
            phys[r, c * h.width : c * h.width + n] = vals[:n]
    out = from_physical(phys[:, :cols], h.spec)
    if h.post and "divide" in h.post:
        out = out / h.post["divide"]
    return out
