"""The crash-safe outbox / nonce manager against the devnet over JSON-RPC.

A "crash" is the outbox object being dropped without any cleanup between two steps (the
SQLite file is all that survives, as after kill -9), and a new one opened on the same file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dnode_chain import ETHER, Chain

from dnode.contracts.client import ChainClient, send_transaction
from dnode.contracts.errors import TransactionReverted
from dnode.contracts.outbox import TxOutbox, bump_fees, tx_nonce

# the embedded devnet has no queue for a nonce ahead of the account's ("nonce too high"), as
# some nodes; anvil queues it (its mempool: test_outbox_anvil.py)
CHAIN_ENGINE = "devnet"


def _nonce(chain: Chain, client: ChainClient) -> int:
    assert client.account is not None
    return int(chain.w3.eth.get_transaction_count(client.account.address, "latest"))


def _register_data(client: ChainClient, peer: str = "12D3KooWoutbox") -> bytes:
    return bytes.fromhex(client.contract.encode_abi("register", args=[peer, 1])[2:])


def _record_register(box: TxOutbox, chain: Chain, client: ChainClient, peer: str) -> int:
    assert client.account is not None
    return box.record(
        chain.w3, client.account, "register", to=client.address, data=_register_data(client, peer)
    )


def _check_gapless(chain: Chain, box: TxOutbox, client: ChainClient, first: int) -> None:
    """Every nonce from ``first`` up to the account's chain nonce is one mined outbox row."""
    assert client.account is not None
    rows = box.rows(client.account.address)
    mined = {r.nonce: r for r in rows if r.state in ("mined", "reverted")}
    assert sorted(mined) == list(range(first, _nonce(chain, client)))
    for nonce, r in mined.items():
        assert r.mined_hash is not None and tx_nonce(chain.w3, r.mined_hash) == nonce
    assert not [r for r in rows if r.state == "pending"]


def test_sends_are_recorded_with_gapless_nonces(chain: Chain, funded, tmp_path: Path) -> None:
    node = funded("outbox-a")
    node.outbox = box = TxOutbox(tmp_path / "node.db")
    first = _nonce(chain, node)
    node.register("12D3KooWa", 1)
    node.stake(2 * ETHER)
    node.unbond(ETHER // 2)
    _check_gapless(chain, box, node, first)
    assert [r.action for r in box.rows(node.account.address)] == ["register", "stake", "unbond"]


def test_deterministic_revert_is_neither_recorded_nor_retried(
    chain: Chain, funded, tmp_path: Path
) -> None:
    node = funded("outbox-b")
    node.outbox = box = TxOutbox(tmp_path / "node.db")
    with pytest.raises(TransactionReverted, match="registry"):
        node.unbond(ETHER)  # nothing staked: eth_estimateGas reverts
    assert box.rows() == []
    node.register("12D3KooWb", 1)  # the next tx takes the nonce the revert did not consume
    _check_gapless(chain, box, node, 0)


def test_crash_after_recording_before_broadcast(chain: Chain, funded, tmp_path: Path) -> None:
    node = funded("outbox-c")
    box = TxOutbox(tmp_path / "node.db")
    first = _nonce(chain, node)
    _record_register(box, chain, node, "12D3KooWc1")
    assert _nonce(chain, node) == first  # recorded only
    del box  # crash

    box = TxOutbox(tmp_path / "node.db")
    (row,) = box.recover(chain.w3, node.account)
    assert row.state == "mined" and row.nonce == first
    assert node.node_info().peer_id == "12D3KooWc1"
    node.outbox = box
    node.register("12D3KooWc2", 1)  # continues after the recovered nonce
    _check_gapless(chain, box, node, first)


def test_crash_after_broadcast_is_not_sent_twice(chain: Chain, funded, tmp_path: Path) -> None:
    node = funded("outbox-d")
    box = TxOutbox(tmp_path / "node.db")
    first = _nonce(chain, node)
    rid = _record_register(box, chain, node, "12D3KooWd")
    box._broadcast(chain.w3, node.account, rid)  # mined; the process dies before the receipt
    del box

    box = TxOutbox(tmp_path / "node.db")
    # re-broadcasting the same raw tx is answered "already known": treated as possibly sent
    box._broadcast(chain.w3, node.account, rid)
    (row,) = box.recover(chain.w3, node.account)
    assert row.state == "mined" and len(row.tx_hashes) == 1
    assert _nonce(chain, node) == first + 1
    _check_gapless(chain, box, node, first)


def test_underpriced_attempt_is_replaced_with_the_same_nonce(
    chain: Chain, funded, tmp_path: Path
) -> None:
    """A tx signed with fees the chain no longer accepts is re-signed at >= +12.5% / market
    fees with the same nonce; only one version is ever mined."""
    node = funded("outbox-e")
    box = TxOutbox(tmp_path / "node.db")
    first = _nonce(chain, node)
    rid = _record_register(box, chain, node, "12D3KooWe")
    tx, _, nonce = box._unsigned(rid)
    cheap = {**tx, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1}
    signed = node.account.sign_transaction(cheap)
    with box._txn() as db:  # as if the node signed it when fees were far lower
        db.execute("DELETE FROM tx_attempts WHERE outbox_id = ?", (rid,))
        box._insert_attempt(db, rid, signed, cheap)
    del box

    box = TxOutbox(tmp_path / "node.db")
    (row,) = box.recover(chain.w3, node.account)
    assert row.state == "mined" and row.nonce == nonce == first
    assert len(row.tx_hashes) >= 2 and row.mined_hash == row.tx_hashes[-1]
    _check_gapless(chain, box, node, first)


def test_nonce_used_by_another_wallet_is_marked_lost(chain: Chain, funded, tmp_path: Path) -> None:
    node = funded("outbox-f")
    box = TxOutbox(tmp_path / "node.db")
    rid = _record_register(box, chain, node, "12D3KooWf1")
    # the same key sends from elsewhere (no outbox) and takes that nonce first
    send_transaction(chain.w3, node.account, "transfer", to=node.account.address, data=b"")
    (row,) = box.recover(chain.w3, node.account)
    assert row.id == rid and row.state == "lost"
    node.outbox = box
    node.register("12D3KooWf2", 1)  # the manager moves on to the chain's next nonce
    assert node.node_info().peer_id == "12D3KooWf2"
    assert box.pending(node.account.address) == []


def test_bump_fees_meets_the_replacement_floor() -> None:
    old = {"maxFeePerGas": 1000, "maxPriorityFeePerGas": 100}
    new = bump_fees(old, {"maxFeePerGas": 10, "maxPriorityFeePerGas": 1})
    assert new["maxFeePerGas"] >= 1125 and new["maxPriorityFeePerGas"] >= 113
    assert bump_fees(old, {"maxFeePerGas": 5000, "maxPriorityFeePerGas": 400}) == {
        "maxFeePerGas": 5000,
        "maxPriorityFeePerGas": 400,
    }
    assert bump_fees({"gasPrice": 8}, {"gasPrice": 1})["gasPrice"] >= 9


def test_out_of_order_broadcast_waits_for_the_earlier_nonce(
    chain: Chain, funded, tmp_path: Path
) -> None:
    """Two recorded txs, the later one broadcast first (answered "nonce too high" by a node
    without a queue): it stays unsent, and a restart sends both, in nonce order."""
    node = funded("outbox-g")
    box = TxOutbox(tmp_path / "node.db")
    first = _nonce(chain, node)
    _record_register(box, chain, node, "12D3KooWg1")
    later = _record_register(box, chain, node, "12D3KooWg2")
    box._broadcast(chain.w3, node.account, later)
    assert _nonce(chain, node) == first and box._attempts(later)[-1].broadcast_at is None
    del box

    box = TxOutbox(tmp_path / "node.db")
    rows = box.recover(chain.w3, node.account)
    assert [(r.nonce, r.state) for r in rows] == [(first, "mined"), (first + 1, "mined")]
    assert node.node_info().peer_id == "12D3KooWg2"
    _check_gapless(chain, box, node, first)
