"""Driver process for tests/node/test_blobs.py: a libp2p host serving a BlobStore directory.

Prints one JSON line ``{"peer_id", "addrs"}`` when ready; serves until stdin closes. Pushes
are accepted (up to the store's cap) when ``--accept-push`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dnode.node.blobs import BlobStore, serve_blobs  # noqa: E402
from dnode.node.p2p import open_host  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    store = BlobStore(args.store, max_blob=args.max_blob)

    async def accept(peer: str, digest: bytes, size: int) -> bool:
        return args.accept_push

    async with open_host(bytes.fromhex(args.seed), ["/ip4/127.0.0.1/tcp/0"]) as host:
        serve_blobs(host, store, accept_push=accept)
        print(json.dumps({"peer_id": host.peer_id, "addrs": host.addrs}), flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some(1024):
            pass


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--max-blob", type=int, default=64 * 1024 * 1024)
    ap.add_argument("--accept-push", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("libp2p").setLevel(logging.WARNING)
    trio.run(main, a)
