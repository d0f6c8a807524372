"""``dnode task result --plot FILE.png`` for 2-D k-means: what the requester may see -- the
centroids, each drawn as a disc whose area follows its cluster's size, inside the columns'
declared ranges -- as a PNG written with the standard library only (zlib; no matplotlib)."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from dnode.cli.context import CliError

SIZE = 480
MARGIN = 30
COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def _png(width: int, height: int, rows: list[bytearray]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(r) for r in rows)  # filter type 0 on every row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))  # fmt: skip


def clusters_png(
    path: Path,
    centroids: Sequence[tuple[float, float]],
    sizes: Sequence[int],
    xr: tuple[float, float],
    yr: tuple[float, float],
) -> None:
    """Draw the centroids (discs of area proportional to the cluster sizes, a black centre
    dot) on the declared x/y ranges, with a frame; write the PNG to ``path``."""
    rows = [bytearray(b"\xff" * (3 * SIZE)) for _ in range(SIZE)]

    def put(x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < SIZE and 0 <= y < SIZE:
            rows[y][3 * x : 3 * x + 3] = bytes(rgb)

    inner = SIZE - 2 * MARGIN
    for i in range(inner + 1):  # the frame: the declared ranges
        for x, y in ((MARGIN + i, MARGIN), (MARGIN + i, SIZE - MARGIN),
                     (MARGIN, MARGIN + i), (SIZE - MARGIN, MARGIN + i)):  # fmt: skip
            put(x, y, (0, 0, 0))
    biggest = max([*sizes, 1])

    def px(v: float, lo: float, hi: float) -> float:
        return (v - lo) / (hi - lo or 1) * inner

    for i, ((cx, cy), n) in enumerate(zip(centroids, sizes, strict=True)):
        x0 = MARGIN + px(cx, *xr)
        y0 = SIZE - MARGIN - px(cy, *yr)
        r = 3 + 40 * math.sqrt(max(n, 0) / biggest)
        rgb = COLORS[i % len(COLORS)]
        for y in range(int(y0 - r), int(y0 + r) + 1):
            for x in range(int(x0 - r), int(x0 + r) + 1):
                if (x - x0) ** 2 + (y - y0) ** 2 <= r * r:
                    put(x, y, rgb)
        for dx in range(-2, 3):
            for dy in range(-2, 3):
                put(int(x0) + dx, int(y0) + dy, (0, 0, 0))
    try:
        path.write_bytes(_png(SIZE, SIZE, rows))
    except OSError as e:
        raise CliError(f"cannot write --plot {path}: {e.strerror or e}") from None
