"""ResilientHTTPProvider against the real devnet, through a misbehaving HTTP proxy."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from dnode.contracts.client import connect, rpc_stats
from dnode.contracts.devnet import dev_keys, start_in_thread
from dnode.contracts.errors import EndpointChainMismatch, RpcRetriesExhausted
from dnode.contracts.rpc import ResilientHTTPProvider, RetryPolicy
from tests.rpc_chaos_proxy import ChaosProxy

DEAD = "http://127.0.0.1:9"  # discard port: connection refused


@pytest.fixture(scope="module")
def devnet() -> Iterator[str]:
    server, url = start_in_thread(port=0)
    yield url
    server.shutdown()


def _w3(*urls: str, attempts: int = 6) -> Web3:
    policy = RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05, timeout=5)
    return connect(list(urls), policy=policy)


def test_transient_faults_are_retried(devnet: str) -> None:
    with ChaosProxy(devnet, fault_rate=0.5, seed=7, delay=(0.01, 0.05)).running() as proxy:
        w3 = _w3(proxy.url, attempts=10)
        heads = [w3.eth.block_number for _ in range(40)]
    stats = rpc_stats(w3)
    assert stats is not None
    assert all(h >= 0 for h in heads)
    assert proxy.counts["reset"] and proxy.counts["http_502"] and proxy.counts["lost_reply"]
    # every reset, 502 and lost reply cost exactly one retry; delays cost none
    lost = proxy.counts["reset"] + proxy.counts["http_502"] + proxy.counts["lost_reply"]
    assert stats.retries == lost
    assert stats.errors.get("connection", 0) + stats.errors.get("http_502", 0) == lost


def test_failover_to_the_next_endpoint(devnet: str) -> None:
    w3 = _w3(DEAD, devnet)
    assert w3.eth.block_number >= 0
    stats = rpc_stats(w3)
    assert stats is not None and stats.failovers == 1
    assert isinstance(w3.provider, ResilientHTTPProvider)
    assert w3.provider.active_endpoint == devnet
    w3.eth.block_number  # noqa: B018 - stays on the healthy endpoint
    assert stats.failovers == 1


def test_deterministic_errors_are_not_retried(devnet: str) -> None:
    with ChaosProxy(devnet, fault_rate=0.0).running() as proxy:
        w3 = _w3(proxy.url)
        resp = w3.provider.make_request("eth_getBalance", ["not an address", "latest"])  # type: ignore[arg-type]
        assert "error" in resp
    assert proxy.counts["forwarded"] == 1
    stats = rpc_stats(w3)
    assert stats is not None and stats.retries == 0


def test_all_endpoints_down_is_one_typed_error() -> None:
    sleeps: list[float] = []
    provider = ResilientHTTPProvider(
        [DEAD, "http://127.0.0.1:7"],
        RetryPolicy(attempts=5, base_delay=1.0, max_delay=3.0, timeout=2),
        rng=random.Random(1),
        sleep=sleeps.append,
    )
    with pytest.raises(RpcRetriesExhausted) as info:
        Web3(provider).eth.block_number  # noqa: B018
    assert info.value.attempts == 5 and info.value.method == "eth_blockNumber"
    assert info.value.kind == "connection"
    # exponential backoff with full jitter: each pause within [0, min(cap, base * 2^i)]
    assert len(sleeps) == 4
    assert all(0 <= s <= min(3.0, 2**i) for i, s in enumerate(sleeps))
    assert provider.stats.failovers == 4 and provider.stats.exhausted == 1


def test_endpoints_must_agree_on_the_chain_id(devnet: str) -> None:
    other, other_url = start_in_thread(port=0, chain_id=4242)
    try:
        provider = ResilientHTTPProvider([devnet, other_url])
        with pytest.raises(EndpointChainMismatch) as info:
            provider.check_chain_ids()
        assert info.value.actual == 4242 and info.value.endpoint == other_url
        # an unreachable endpoint is no mismatch: it is checked when first used
        assert (
            ResilientHTTPProvider([devnet, DEAD]).check_chain_ids()
            == Web3(ResilientHTTPProvider([devnet])).eth.chain_id
        )
    finally:
        other.shutdown()


def _signed_transfer(w3: Web3, to: str) -> Any:
    """A 1-wei transfer from a dev account, signed locally (sent raw by the test)."""
    acct = Account.from_key(dev_keys(3)[2])
    tx = {
        "to": to,
        "value": 1,
        "gas": 21_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    return acct.sign_transaction(tx)


def test_lost_reply_to_a_raw_transaction_is_not_a_failure(devnet: str) -> None:
    plain = _w3(devnet)
    signed = _signed_transfer(plain, "0x" + "11" * 20)
    # the first send reaches the chain but its reply is lost; the retry is refused as a
    # duplicate ("already known" / "nonce too low"): the provider recognises its own tx
    with ChaosProxy(devnet, fault_rate=0.0, plan=["lost_reply"]).running() as proxy:
        w3 = _w3(proxy.url)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert proxy.counts["lost_reply"] == 1 and proxy.counts["forwarded"] >= 3
    assert tx_hash == signed.hash
    assert plain.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["status"] == 1


def test_a_flaky_lookup_after_a_lost_reply_is_retried(devnet: str) -> None:
    """The chaos e2e test once failed with 'already known': the send's reply was lost, the
    retry was refused as a duplicate, and the lookup that recognises our own transaction
    itself met a fault (30% of requests) and the refusal went up to the user."""
    plain = _w3(devnet)
    signed = _signed_transfer(plain, "0x" + "12" * 20)
    # send: reply lost; retry: forwarded and refused; lookup: reset, 502, then answered
    plan = ["lost_reply", None, "reset", "http_502"]
    with ChaosProxy(devnet, fault_rate=0.0, plan=plan).running() as proxy:
        tx_hash = _w3(proxy.url).eth.send_raw_transaction(signed.raw_transaction)
    assert proxy.counts["reset"] == 1 and proxy.counts["http_502"] == 1
    assert tx_hash == signed.hash
    assert plain.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["status"] == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": -32603, "message": "EVM error CreateContractSizeLimit"}, None),  # anvil
        ({"code": -32603, "message": "out of gas"}, None),
        ({"code": 3, "message": "execution reverted: x"}, None),
        ({"code": -32603, "message": "internal error"}, "rpc_error"),
        ({"code": -32005, "message": "request rate limited"}, "rpc_error"),
    ],
)
def test_evm_failures_are_final_whatever_their_code(error: dict, kind: str | None) -> None:
    from dnode.contracts.rpc import classify_response

    assert classify_response({"jsonrpc": "2.0", "id": 1, "error": error}) == kind
