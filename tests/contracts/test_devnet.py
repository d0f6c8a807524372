"""The embedded dev chain, exercised only through JSON-RPC over HTTP (web3 HTTPProvider)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.exceptions import BlockNotFound, ContractLogicError

from dnode.contracts.devnet import (
    DEFAULT_BALANCE_WEI,
    DEV_ONLY_WARNING,
    dev_accounts,
    dev_keys,
    print_accounts,
    start_in_thread,
)

vyper = pytest.importorskip("vyper")

SOURCE = """
# pragma version ^0.4.0

event Ping:
    sender: indexed(address)
    tag: indexed(uint256)
    note: uint256

event Other:
    tag: indexed(uint256)

counter: public(uint256)

@external
def ping(tag: uint256, note: uint256):
    self.counter += 1
    log Ping(sender=msg.sender, tag=tag, note=note)

@external
def other(tag: uint256):
    log Other(tag=tag)

@external
def nope():
    raise "test: nope"

@view
@external
def nope_view() -> uint256:
    assert self.counter == 12345, "test: nope"
    return 1

@view
@external
def now() -> uint256:
    return block.timestamp

@view
@external
def cid() -> uint256:
    return chain.id
"""


@pytest.fixture(scope="module")
def chain():
    server, url = start_in_thread(port=0)
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
    yield server, url, w3
    server.shutdown()


@pytest.fixture(scope="module")
def keys(chain):
    ks = dev_keys(10)
    assert ks == [row.private_key for row in dev_accounts(10)] == chain[0].devnet.private_keys
    return ks


@pytest.fixture(scope="module")
def compiled():
    out = vyper.compile_code(SOURCE, output_formats=["abi", "bytecode"])
    return out["abi"], out["bytecode"]


def rpc(url, payload):
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def send(w3, key, tx):
    """Fill, sign locally and eth_sendRawTransaction; returns the receipt."""
    acct = Account.from_key(key)
    tx = dict(tx)
    tx.setdefault("from", acct.address)
    if "nonce" not in tx:
        tx["nonce"] = w3.eth.get_transaction_count(acct.address, "pending")
    tx.setdefault("chainId", 1337)
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        tx["maxPriorityFeePerGas"] = w3.eth.max_priority_fee
        tx["maxFeePerGas"] = (
            2 * w3.eth.get_block("latest")["baseFeePerGas"] + tx["maxPriorityFeePerGas"]
        )
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)
    tx_hash = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10, poll_latency=0.05)


@pytest.fixture(scope="module")
def contract(chain, keys, compiled):
    _, _, w3 = chain
    abi_, bytecode = compiled
    factory = w3.eth.contract(abi=abi_, bytecode=bytecode)
    receipt = send(
        w3, keys[0], factory.constructor().build_transaction({"from": dev_accounts(1)[0].address})
    )
    assert receipt["status"] == 1 and receipt["contractAddress"]
    assert w3.eth.get_code(receipt["contractAddress"]) != b""
    return w3.eth.contract(address=receipt["contractAddress"], abi=abi_)


def call_tx(contract, fn, key):
    return fn.build_transaction({"from": Account.from_key(key).address})


# --------------------------------------------------------------------------- basics


def test_chain_basics(chain):
    server, url, w3 = chain
    assert w3.is_connected()
    assert w3.eth.chain_id == 1337
    assert w3.net.version == "1337"
    assert isinstance(w3.eth.block_number, int)
    rows = print_accounts(server.devnet)
    assert len(rows) == 10 and "DEV ONLY" in DEV_ONLY_WARNING
    assert [r.address for r in rows] == w3.eth.accounts
    # the well-known public dev mnemonic: same first account as anvil / hardhat
    assert rows[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert Account.from_key(rows[0].private_key).address == rows[0].address
    assert w3.eth.get_balance(rows[9].address) == DEFAULT_BALANCE_WEI
    latest = w3.eth.get_block("latest")
    assert latest["gasLimit"] == 30_000_000
    assert abs(latest["timestamp"] - time.time()) < 120
    assert w3.eth.get_block("earliest")["number"] == 0
    with pytest.raises(BlockNotFound):
        w3.eth.get_block(10**6)
    resp = rpc(
        url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getBlockByNumber",
            "params": ["0xffffff", False],
        },
    )
    assert resp["result"] is None
    assert (
        rpc(
            url,
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "eth_getTransactionReceipt",
                "params": ["0x" + "ab" * 32],
            },
        )["result"]
        is None
    )


def test_value_transfers_eip1559_and_legacy(chain, keys):
    _, _, w3 = chain
    to = Account.create().address
    before = w3.eth.block_number
    r1 = send(w3, keys[1], {"to": to, "value": 10**18})
    assert r1["status"] == 1 and r1["type"] == 2 and r1["gasUsed"] == 21_000
    assert r1["blockNumber"] == before + 1  # instant mining, one block per tx
    r2 = send(w3, keys[1], {"to": to, "value": 5, "gasPrice": w3.eth.gas_price, "gas": 21_000})
    assert r2["status"] == 1 and r2["type"] == 0
    assert w3.eth.get_balance(to) == 10**18 + 5
    tx = w3.eth.get_transaction(r2["transactionHash"])
    assert tx["chainId"] == 1337 and tx["blockNumber"] == r2["blockNumber"]
    block = w3.eth.get_block(r2["blockNumber"], full_transactions=True)
    assert block["transactions"][0]["hash"] == r2["transactionHash"]
    assert w3.eth.get_block(block["hash"])["number"] == block["number"]
    sender = Account.from_key(keys[1]).address
    assert (
        w3.eth.get_transaction_count(sender) == w3.eth.get_transaction_count(sender, "pending") == 2
    )


def test_rejects_wrong_chain_id_and_stale_nonce(chain, keys):
    _, url, w3 = chain
    acct = Account.from_key(keys[2])
    base = {
        "to": acct.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
    }
    wrong = acct.sign_transaction({**base, "nonce": 0, "chainId": 5}).raw_transaction
    resp = rpc(
        url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_sendRawTransaction",
            "params": ["0x" + wrong.hex()],
        },
    )
    assert resp["error"]["code"] == -32000 and "chain id" in resp["error"]["message"]
    send(w3, keys[2], {"to": acct.address, "value": 1})
    stale = acct.sign_transaction({**base, "nonce": 0, "chainId": 1337}).raw_transaction
    resp = rpc(
        url,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "eth_sendRawTransaction",
            "params": ["0x" + stale.hex()],
        },
    )
    assert "nonce too low" in resp["error"]["message"]


# --------------------------------------------------------------------------- contracts


def test_contract_state_and_chain_id_opcode(chain, contract, keys):
    _, _, w3 = chain
    assert contract.functions.cid().call() == 1337
    start = contract.functions.counter().call()
    send(w3, keys[0], call_tx(contract, contract.functions.ping(1, 2), keys[0]))
    assert contract.functions.counter().call() == start + 1
    slot0 = w3.eth.get_storage_at(contract.address, 0)
    assert int.from_bytes(slot0, "big") == start + 1


def test_get_logs_filters(chain, contract, keys):
    _, _, w3 = chain
    a0, a3 = Account.from_key(keys[0]).address, Account.from_key(keys[3]).address
    first = w3.eth.block_number + 1
    r1 = send(w3, keys[0], call_tx(contract, contract.functions.ping(7, 100), keys[0]))
    r2 = send(w3, keys[3], call_tx(contract, contract.functions.ping(8, 200), keys[3]))
    r3 = send(w3, keys[3], call_tx(contract, contract.functions.ping(9, 300), keys[3]))
    r4 = send(w3, keys[0], call_tx(contract, contract.functions.other(7), keys[0]))
    last = r4["blockNumber"]
    ping_topic = Web3.to_hex(hexstr=contract.events.Ping().topic)
    other_topic = Web3.to_hex(hexstr=contract.events.Other().topic)

    def topic_addr(a):
        return "0x" + "00" * 12 + a[2:].lower()

    def topic_int(n):
        return "0x" + n.to_bytes(32, "big").hex()

    rng = {"fromBlock": first, "toBlock": "latest"}
    by_address = w3.eth.get_logs({**rng, "address": contract.address})
    assert [lg["blockNumber"] for lg in by_address] == [r["blockNumber"] for r in (r1, r2, r3, r4)]
    assert w3.eth.get_logs({**rng, "address": [contract.address, a0]}) == by_address
    assert w3.eth.get_logs({**rng, "address": a0}) == []

    pings = w3.eth.get_logs({**rng, "topics": [ping_topic]})
    assert len(pings) == 3
    assert all(lg["logIndex"] == 0 and lg["removed"] is False for lg in pings)
    # topic1 (sender): exact, and OR-list; topic0 wildcard
    assert len(w3.eth.get_logs({**rng, "topics": [ping_topic, topic_addr(a3)]})) == 2
    assert (
        len(w3.eth.get_logs({**rng, "topics": [ping_topic, [topic_addr(a0), topic_addr(a3)]]})) == 3
    )
    # null = wildcard: topic1 == 7 only matches Other(tag=7) (Ping's topic1 is the sender);
    # topic2 OR-list matches Ping tags 7 and 9
    assert len(w3.eth.get_logs({**rng, "topics": [None, topic_int(7)]})) == 1  # Other(tag=7)
    assert len(w3.eth.get_logs({**rng, "topics": [None, None, [topic_int(7), topic_int(9)]]})) == 2
    assert len(w3.eth.get_logs({**rng, "topics": [[ping_topic, other_topic]]})) == 4
    assert w3.eth.get_logs({**rng, "topics": [other_topic, None, None]}) == []  # too many topics

    # block ranges: hex numbers, single block, blockHash, earliest
    assert (
        len(
            w3.eth.get_logs(
                {"fromBlock": hex(r2["blockNumber"]), "toBlock": hex(r3["blockNumber"])}
            )
        )
        == 2
    )
    one = w3.eth.get_logs({"fromBlock": r3["blockNumber"], "toBlock": r3["blockNumber"]})
    assert len(one) == 1 and one[0]["transactionHash"] == r3["transactionHash"]
    assert w3.eth.get_logs({"blockHash": r2["blockHash"]}) == w3.eth.get_logs(
        {"fromBlock": r2["blockNumber"], "toBlock": r2["blockNumber"]}
    )
    assert (
        len(w3.eth.get_logs({"fromBlock": "earliest", "toBlock": last, "topics": [ping_topic]}))
        >= 3
    )
    # decoded through web3's contract event API, and matching the receipt
    decoded = contract.events.Ping().get_logs(from_block=first, argument_filters={"tag": 8})
    assert (
        len(decoded) == 1
        and decoded[0]["args"]["note"] == 200
        and decoded[0]["args"]["sender"] == a3
    )
    assert contract.events.Ping().process_receipt(r2)[0]["args"]["tag"] == 8


def test_log_filter_changes(chain, contract, keys):
    _, _, w3 = chain
    flt = w3.eth.filter({"address": contract.address, "fromBlock": "latest"})
    assert flt.get_new_entries() == []
    send(w3, keys[4], call_tx(contract, contract.functions.ping(42, 1), keys[4]))
    new = flt.get_new_entries()
    assert len(new) == 1 and new[0]["address"] == contract.address
    assert flt.get_new_entries() == []
    assert w3.eth.uninstall_filter(flt.filter_id)


@pytest.mark.parametrize("criteria", [{}, {"fromBlock": "latest"}, {"toBlock": "latest"}])
def test_log_filter_changes_keep_every_block_mined_between_polls(chain, contract, keys, criteria):
    # ethers.js's contract.on() installs a filter without fromBlock and polls it: logs of every
    # block mined since the last poll must come back, not only the head block's
    _, _, w3 = chain
    flt = w3.eth.filter({"address": contract.address, **criteria})
    receipts = [
        send(w3, keys[6], call_tx(contract, contract.functions.ping(50 + i, i), keys[6]))
        for i in range(3)
    ]
    assert len({r["blockNumber"] for r in receipts}) == 3  # three blocks between two polls
    new = flt.get_new_entries()
    assert [e["transactionHash"] for e in new] == [r["transactionHash"] for r in receipts]
    assert flt.get_new_entries() == []
    assert w3.eth.uninstall_filter(flt.filter_id)


def test_reverts_surface_as_contract_logic_error(chain, contract, keys):
    _, url, w3 = chain
    sender = Account.from_key(keys[5]).address
    with pytest.raises(ContractLogicError, match="test: nope"):
        contract.functions.nope().call({"from": sender})
    with pytest.raises(ContractLogicError, match="test: nope"):
        contract.functions.nope_view().call()
    with pytest.raises(ContractLogicError, match="test: nope"):
        contract.functions.nope().estimate_gas({"from": sender})
    with pytest.raises(ContractLogicError, match="test: nope"):
        contract.functions.nope().build_transaction({"from": sender})
    # the raw error object is geth/anvil shaped: code 3, data = ABI-encoded Error(string)
    data = contract.functions.nope()._encode_transaction_data()
    resp = rpc(
        url,
        {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "eth_estimateGas",
            "params": [{"from": sender, "to": contract.address, "data": data}],
        },
    )
    assert resp["error"]["code"] == 3
    assert resp["error"]["data"].startswith("0x08c379a0")
    assert "test: nope" in resp["error"]["message"]
    # a mined reverting tx (explicit gas) gets status 0, like on a real node
    receipt = send(
        w3,
        keys[5],
        {**call_tx(contract, contract.functions.ping(1, 1), keys[5]), "data": data, "gas": 100_000},
    )
    assert receipt["status"] == 0


def test_time_travel(chain, contract, keys):
    _, url, w3 = chain
    t0 = w3.eth.get_block("latest")["timestamp"]
    wall0 = int(time.time())
    offset = int(w3.provider.make_request("evm_increaseTime", [3600])["result"], 16)
    assert offset >= 3600
    w3.provider.make_request("evm_mine", [])
    t1 = w3.eth.get_block("latest")["timestamp"]
    # the offset applies to the wall clock (blocks mined faster than 1/s run slightly ahead of it)
    assert t1 > t0 and t1 >= wall0 + 3600
    assert contract.functions.now().call() == t1
    # txs after the jump keep the offset; timestamps strictly increase
    r = send(w3, keys[6], call_tx(contract, contract.functions.ping(1, 1), keys[6]))
    t2 = w3.eth.get_block(r["blockNumber"])["timestamp"]
    assert t2 > t1 and t2 >= time.time() + 3590
    w3.provider.make_request("evm_mine", [t2 + 1000])
    assert w3.eth.get_block("latest")["timestamp"] == t2 + 1000
    stamps = [w3.eth.get_block(n)["timestamp"] for n in range(w3.eth.block_number + 1)]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


def test_snapshot_revert_and_set_balance(chain, keys):
    _, _, w3 = chain
    acct = Account.from_key(keys[7]).address
    stranger = Account.create().address
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    number, balance = w3.eth.block_number, w3.eth.get_balance(acct)
    send(w3, keys[7], {"to": stranger, "value": 12345})
    assert w3.provider.make_request("anvil_setBalance", [stranger, hex(10**20)])["result"] is True
    assert w3.eth.get_balance(stranger) == 10**20
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True
    assert w3.eth.block_number == number and w3.eth.get_balance(acct) == balance
    assert w3.eth.get_balance(stranger) == 0
    assert w3.provider.make_request("evm_revert", [snap])["result"] is False  # single use
    r = send(w3, keys[7], {"to": stranger, "value": 1})  # the chain goes on after a revert
    assert r["blockNumber"] == number + 1 and w3.eth.get_balance(stranger) == 1


# --------------------------------------------------------------------------- JSON-RPC envelope


def test_batch_and_error_objects(chain):
    _, url, w3 = chain
    batch = rpc(
        url,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_noSuchMethod", "params": []},
            {"jsonrpc": "2.0", "method": "eth_chainId", "params": []},  # notification: no answer
            {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0x1234"]},
        ],
    )
    by_id = {r["id"]: r for r in batch}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1]["result"] == "0x539"
    assert int(by_id[2]["result"], 16) == w3.eth.block_number
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[4]["error"]["code"] == -32602

    req = urllib.request.Request(
        url, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["error"]["code"] == -32700
    assert rpc(url, {"jsonrpc": "2.0", "id": 5, "method": "web3_nope"})["error"]["code"] == -32601
    assert rpc(url, [])["error"]["code"] == -32600
    # and the server keeps serving
    assert w3.eth.chain_id == 1337
    assert rpc(url, {"jsonrpc": "2.0", "id": 6, "method": "web3_clientVersion"})[
        "result"
    ].startswith("dnode")
