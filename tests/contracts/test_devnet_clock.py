"""The embedded devnet's clock stays with the wall clock under load (``max_ahead``).

Regression: instant mining stamps each block at least one second after its parent, so at more
than one transaction per second the chain's clock ran ahead of the wall clock without bound
(about a minute after two minutes of a chaos run), and task deadlines counted in chain time
expired early: committees "never formed", MPC retries found "no time left"."""

from __future__ import annotations

import threading
import time

from eth_account import Account

from dnode.contracts.devnet import Devnet, RpcError, dev_keys


def _send(net: Devnet, key: str, to: str, nonce: int) -> str:
    acct = Account.from_key(key)
    tx = acct.sign_transaction(
        {"to": to, "value": 1, "gas": 21000, "maxFeePerGas": 10**10,
         "maxPriorityFeePerGas": 1, "nonce": nonce, "chainId": net.chain_id}
    )  # fmt: skip
    return str(net.request("eth_sendRawTransaction", ["0x" + tx.raw_transaction.hex()]))


def _head_ts(net: Devnet) -> int:
    return int(net.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def _burst(net: Devnet, senders: list[str], to: str, seconds: float) -> list[str]:
    """Every sender sends transactions back to back for ``seconds`` (each waits its receipt)."""
    hashes: list[str] = []

    def run(key: str) -> None:
        addr = Account.from_key(key).address
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            n = int(net.request("eth_getTransactionCount", [addr, "pending"]), 16)
            h = _send(net, key, to, n)
            hashes.append(h)
            while net.request("eth_getTransactionReceipt", [h]) is None:
                time.sleep(0.02)

    threads = [threading.Thread(target=run, args=(k,)) for k in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return hashes


def test_instant_mining_runs_the_clock_ahead_under_load() -> None:
    net = Devnet(accounts=5)  # in-process default: every transaction mined at once
    keys = dev_keys(5)
    hashes = _burst(net, keys[:4], Account.from_key(keys[4]).address, 3.0)
    assert len(hashes) > 20
    assert _head_ts(net) - time.time() > 10  # the clock ran ahead (what max_ahead bounds)


def test_max_ahead_bounds_the_clock_and_still_mines_everything() -> None:
    net = Devnet(accounts=5, max_ahead=2.0)
    net.run_miner(empty_every=1.0)
    keys = dev_keys(5)
    hashes = _burst(net, keys[:4], Account.from_key(keys[4]).address, 3.0)
    assert len(hashes) > 8
    assert _head_ts(net) - time.time() <= 2.0 + 1  # bounded
    for h in hashes:  # every transaction mined, several per block once the clock is ahead
        assert net.request("eth_getTransactionReceipt", [h])["status"] == "0x1"
    blocks = {net.request("eth_getTransactionReceipt", [h])["blockNumber"] for h in hashes}
    assert len(blocks) < len(hashes)


def test_a_waiting_transaction_counts_for_the_pending_nonce_and_is_known() -> None:
    net = Devnet(accounts=3, max_ahead=0.0)  # a block ahead of the clock waits for a tick
    key, to = dev_keys(3)[0], Account.from_key(dev_keys(3)[1]).address
    addr = Account.from_key(key).address
    for _ in range(4):  # empty blocks one second apart each: the clock is now >= 2 s behind
        net.request("evm_mine", [])
    h = _send(net, key, to, 0)
    assert net.request("eth_getTransactionReceipt", [h]) is None  # waiting in the pending block
    seen = net.request("eth_getTransactionByHash", [h])  # known, as a real node's mempool says
    assert seen["hash"] == h and seen["blockNumber"] is None
    assert int(net.request("eth_getTransactionCount", [addr, "pending"]), 16) == 1
    assert int(net.request("eth_getTransactionCount", [addr, "latest"]), 16) == 0
    try:
        _send(net, key, to, 0)
        raise AssertionError("a waiting transaction sent again must be refused")
    except RpcError as e:
        assert "already known" in str(e)
    deadline = time.monotonic() + 15
    while net.request("eth_getTransactionReceipt", [h]) is None:
        assert time.monotonic() < deadline, "the tick never mined the waiting transaction"
        net.tick()
        time.sleep(0.2)
    assert net.request("eth_getTransactionReceipt", [h])["status"] == "0x1"
    assert _head_ts(net) <= time.time() + 1


def test_blocks_keep_coming_while_the_clock_is_ahead() -> None:
    """A burst puts the clock ahead; blocks must still come (a task's sortition seed is the
    block after its posting: the demo waited 10 s for it), while the clock falls back."""
    net = Devnet(accounts=5, max_ahead=6.0)
    keys = dev_keys(5)
    to = Account.from_key(keys[4]).address
    for n in range(6):  # six blocks at once: the clock ~5 s ahead
        h = _send(net, keys[0], to, n)
        assert net.request("eth_getTransactionReceipt", [h]) is not None
    assert _head_ts(net) - time.time() >= 3
    net.run_miner(empty_every=1.0)
    start = int(net.request("eth_blockNumber", []), 16)
    time.sleep(4.6)
    mined = int(net.request("eth_blockNumber", []), 16) - start
    assert mined >= 2, mined  # an empty block every 2 s although the clock is ahead
    assert _head_ts(net) - time.time() <= 6.0 + 1  # never past the bound
