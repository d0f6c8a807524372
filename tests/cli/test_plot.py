"""cli.plot: the k-means PNG is a valid image (decoded here with zlib) with one disc per
centroid, larger for the larger cluster, inside the frame of the declared ranges."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from dnode.cli.plot import SIZE, clusters_png


def _decode(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert zlib.crc32(kind + body) == crc
        if kind == b"IHDR":
            ihdr = body
        if kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h = struct.unpack(">II", ihdr[:8])
    raw = zlib.decompress(idat)
    stride = 3 * w + 1
    return [raw[i * stride + 1 : (i + 1) * stride] for i in range(h)]


def test_clusters_png(tmp_path: Path) -> None:
    out = tmp_path / "c.png"
    clusters_png(out, [(-50.0, -50.0), (50.0, 50.0)], [10, 1000], (-100, 100), (-100, 100))
    rows = _decode(out.read_bytes())
    assert len(rows) == SIZE and all(len(r) == 3 * SIZE for r in rows)

    def color_count(rgb: bytes) -> int:
        return sum(r[i : i + 3] == rgb for r in rows for i in range(0, len(r), 3))

    small, big = color_count(bytes((31, 119, 180))), color_count(bytes((255, 127, 14)))
    assert 0 < small < big
