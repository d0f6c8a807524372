"""Issue 13, findings 1 and 2: a malicious committee member, through REAL tunnels between
real node processes (tests/node/mpc_node.py), with real MPyC parties.

* Finding 1: MPyC unpickled what peers sent, so one party could run code in every other
  party (steal its shares and DNODE_PASSWORD).  Now no peer byte reaches pickle: the honest
  parties abort with a protocol violation, nothing runs, and a retry succeeds.
* Finding 2: a tunnel admitted any committee member under any party id; now a stream is
  bound to the seat its (Noise-authenticated) dialer holds, once, with MPyC's party id
  checked against it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dnode.node.mpc.sharing import field_modulus, share
from tests.node.test_p2p import Peer

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("mpc_node.py")
EVIL = Path(__file__).with_name("pickle_party.py")

pytestmark = pytest.mark.timeout(300)


def seed(i: int) -> bytes:
    return bytes([0x40 + i]) * 32


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("mpc-nodes")
    peers: list[Peer] = []
    try:
        first = Peer("n0", logdir, "--seed", seed(0).hex(), driver=DRIVER)
        first.wait_ready()
        peers.append(first)
        for i in (1, 2):
            env = {"DNODE_PASSWORD": f"secret-of-node-{i}"}
            args = ("--seed", seed(i).hex(), "--bootstrap", first.addr)
            peers.append(Peer(f"n{i}", logdir, *args, driver=DRIVER, env=env))
        for p in peers:
            p.wait_ready()
        yield peers, logdir
    finally:
        for p in peers:
            p.close()


def _shares(values: list[int], m: int = 3, t: int = 1) -> list[list[list[int]]]:
    """Per party: [[its share of each value]] (one data owner)."""
    per_party = share(values, m, t, field_modulus(64))
    return [[per_party[i]] for i in range(m)]


def _run(nodes: list[Peer], key: str, pythons: list[str | None], values: list[int]):
    peers = [n.peer_id for n in nodes]
    shares = _shares(values)
    cids = [
        n.send(
            "run",
            key=key,
            peers=peers,
            seat=i,
            shares=shares[i],
            timeout=40,
            task_id=13,
            python=pythons[i],
        )
        for i, n in enumerate(nodes)
    ]
    return [n.reply(c, timeout=120)["result"] for n, c in zip(nodes, cids, strict=True)]


def test_a_pickle_from_a_peer_runs_nothing_and_the_retry_succeeds(nodes, tmp_path):
    peers, _ = nodes
    marker = tmp_path / "pwned.json"
    wrapper = tmp_path / "evil-python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {EVIL} {marker} "$@"\n')
    wrapper.chmod(0o755)
    values = [3, 5, 10]

    # attempt 1: seat 1 sends a code-running pickle to seats 0 and 2
    res = _run(peers, "attack:pickle:1", [None, str(wrapper), None], values)
    stolen = [f.read_text() for f in tmp_path.glob("pwned*")]
    assert not stolen, f"peer code ran in an honest party: {stolen}"
    for seat in (0, 2):
        assert not res[seat]["ok"], res
        assert "protocol violation" in res[seat]["error"], res[seat]

    # the task continues: the next attempt (the daemon's retry slot) computes the sum
    res = _run(peers, "attack:pickle:2", [None, None, None], values)
    assert [r.get("sum") for r in res] == [18, 18, 18], res
    assert not list(tmp_path.glob("pwned*"))


def test_a_member_cannot_tunnel_in_as_another_seat(nodes):
    peers, _ = nodes
    a, b, c = peers
    # b's party (seat 2 of a 3-seat session) is dialed by seats 0 (a) and 1 (c)
    key = "attack:seat"
    b.call("bind_echo", key=key, members=[a.peer_id, c.peer_id], seats={0: a.peer_id, 1: c.peer_id})
    pid0 = (0).to_bytes(2, "little")
    # c (seat 1) claims seat 0: refused before anything reaches the party
    r = c.call("dial", peer=b.peer_id, key=key, index=0, data=(pid0 + b"hello").hex())
    assert not r["accepted"], r
    # c dials under its own seat but announces party 0 to MPyC: reset, nothing delivered
    r = c.call("dial", peer=b.peer_id, key=key, index=1, data=(pid0 + b"hello").hex())
    assert not r["accepted"] or (r["reset"] and r["echo"] == ""), r
    # a, the real seat 0, gets through once; its party id reaches the party as sent
    r = a.call("dial", peer=b.peer_id, key=key, index=0, data=(pid0 + b"hello").hex())
    assert r["accepted"] and bytes.fromhex(r["echo"]) == pid0 + b"hello", r
    # a second connection as seat 0 (MPyC would let it replace the first) is refused
    r = a.call("dial", peer=b.peer_id, key=key, index=0, data=(pid0 + b"again").hex())
    assert not r["accepted"], r
