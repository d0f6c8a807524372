"""node.blobs: the store, and the blob exchange between two real processes (libp2p, Noise,
yamux over 127.0.0.1): a 40 MB blob, digest mismatch, oversize, unknown digest, pushes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from dnode.node.blobs import (
    BlobDigestMismatch,
    BlobError,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    blob_digest,
    fetch_blob,
    fetch_into,
    push_blob,
)
from dnode.node.errors import P2PError
from dnode.node.p2p import open_host

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("blob_peer.py")
BIG = 40 * 1024 * 1024

pytestmark = pytest.mark.timeout(180)


def test_store_roundtrip_and_caps(tmp_path):
    store = BlobStore(tmp_path / "s", max_blob=1000)
    d = store.put(b"hello")
    assert d == blob_digest(b"hello") and store.has(d) and store.get(d) == b"hello"
    assert store.size(d) == 5 and store.path(d).name == d.hex()
    with pytest.raises(BlobTooLarge):
        store.put(b"x" * 1001)
    with pytest.raises(BlobDigestMismatch):
        store.put(b"hello", blob_digest(b"other"))
    with pytest.raises(BlobNotFound):
        store.get(blob_digest(b"missing"))
    with pytest.raises(BlobError):
        store.path(b"short")
    assert not list(store.root.glob(".*tmp"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("blobs")
    store = BlobStore(root / "server", max_blob=64 * 1024 * 1024)
    big = os.urandom(BIG)
    big_digest = store.put(big)
    # a file whose contents do not match its name: the server serves it as is
    forged_digest = blob_digest(b"the real content")
    store.path(forged_digest).write_bytes(b"forged content")
    log = open(root / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            str(DRIVER),
            "--seed",
            (b"\x07" * 32).hex(),
            "--store",
            str(store.root),
            "--accept-push",
            "--max-blob",
            str(64 * 1024 * 1024),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, (root / "server.log").read_text()[-3000:]
        info = json.loads(line)
        yield {
            "peer_id": info["peer_id"],
            "addr": info["addrs"][0],
            "big": big,
            "big_digest": big_digest,
            "forged": forged_digest,
            "proc": proc,
            "root": root,
        }
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _client(server, body):
    async def main():
        async with open_host(b"\x08" * 32, ["/ip4/127.0.0.1/tcp/0"]) as host:
            await host.connect(server["addr"])
            return await body(host)

    return trio.run(main)


def test_fetch_40mb_between_processes(server, tmp_path):
    async def body(host):
        t = time.monotonic()
        data = await fetch_blob(
            host, server["peer_id"], server["big_digest"], max_size=BIG, timeout=60
        )
        took = time.monotonic() - t
        # into a local store, through the first peer that has it
        store = BlobStore(tmp_path / "client", max_blob=BIG)
        await fetch_into(host, [server["peer_id"]], server["big_digest"], store, max_size=BIG)
        return data, took, store

    data, took, store = _client(server, body)
    assert data == server["big"]
    assert store.get(server["big_digest"]) == server["big"]
    print(f"40 MiB blob fetched in {took:.2f} s")


def test_bad_fetches_rejected_and_server_keeps_serving(server):
    async def body(host):
        pid = server["peer_id"]
        with pytest.raises(BlobDigestMismatch):
            await fetch_blob(host, pid, server["forged"], max_size=1000)
        with pytest.raises(BlobTooLarge):
            await fetch_blob(host, pid, server["big_digest"], max_size=BIG - 1)
        with pytest.raises(BlobNotFound):
            await fetch_blob(host, pid, blob_digest(b"nobody has this"), max_size=1000)
        # garbage on the protocol: the server resets that stream and carries on
        stream = await host.open_stream(pid, "/dnode/blob/1.0.0")
        await stream.write(b"\xff\xff\xff\xffgarbage")
        await stream.close_write()
        with pytest.raises(P2PError):
            while await stream.read():
                pass
        # still serving
        return await fetch_blob(host, pid, server["big_digest"], max_size=BIG, timeout=60)

    assert _client(server, body) == server["big"]
    assert server["proc"].poll() is None


def test_push_then_fetch_and_oversize_push_refused(server):
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def body(host):
        pid = server["peer_id"]
        d = await push_blob(host, pid, payload)
        again = await push_blob(host, pid, payload)  # already there: no body sent
        got = await fetch_blob(host, pid, d, max_size=len(payload))
        with pytest.raises(BlobError, match="too large"):
            await push_blob(host, pid, b"\0" * (64 * 1024 * 1024 + 1), timeout=60)
        return d, again, got

    d, again, got = _client(server, body)
    assert d == again == blob_digest(payload) and got == payload
    assert server["proc"].poll() is None
