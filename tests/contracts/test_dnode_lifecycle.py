"""End-to-end task lifecycle over JSON-RPC, with gas accounting per step, on both chains the
contract tests use (anvil and the embedded devnet)."""

from __future__ import annotations

import pytest
from dnode_chain import CHALLENGE_PERIOD, ETHER, SEAT_COLLATERAL, Chain, make_account

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.oracle.attestation import recover_signer, result_digest, sign_join, sign_report

# the contract flow on anvil (every contract test's chain) and on the embedded devnet (the
# default endpoint of `dnode chain` and the demo)
pytestmark = pytest.mark.parametrize("chain", ["anvil", "devnet"], indirect=True)

PROGRAM = b"\x01" * 32
PARAMS = b"\x02" * 32


def setup_nodes(chain: Chain, funded, n: int, stake: int = 2 * ETHER) -> list[ChainClient]:
    nodes = []
    for i in range(n):
        c = funded(f"node{i}")
        c.register(f"12D3KooWnode{i}", 1)
        c.stake(stake)
        nodes.append(c)
    return nodes


def post(chain: Chain, requester: ChainClient, m: int = 3, reward: int = ETHER) -> int:
    """Post a task and let its sortition window grow so every test node has a draw."""
    now = chain.now()
    task_id = requester.post_task(
        PROGRAM,
        PARAMS,
        capability=1,
        committee_size=m,
        seat_deadline=now + 100,
        report_deadline=now + 1000,
        reward=reward,
    )
    chain.open_window()
    return task_id


def joins(chain: Chain, nodes: list[ChainClient], task_id: int, round: int = 0) -> list[bytes]:
    dep = chain.deployment
    return [sign_join(n.account, dep.chain_id, dep.address, task_id, round) for n in nodes]


def form(chain: Chain, nodes: list[ChainClient], task_id: int) -> None:
    """The first member submits the committee with the others' join signatures."""
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:], task_id)]
    nodes[0].form_committee(task_id, [n.account.address for n in nodes], sigs)


def sign_all(chain: Chain, nodes: list[ChainClient], task_id: int, result: bytes) -> list[bytes]:
    dep = chain.deployment
    return [sign_report(n.account, dep.chain_id, dep.address, task_id, result) for n in nodes]


def test_full_lifecycle_m3(chain: Chain, funded) -> None:
    gas: dict[str, int] = {}
    nodes = setup_nodes(chain, funded, 4)
    requester = funded("requester")
    reward = ETHER + 1  # not divisible by 2: dust goes to the first signer

    task_id = post(chain, requester, 3, reward)
    gas["post_task"] = requester.last_tx.gas_used
    assert task_id == 1 and requester.task_count() == 1
    info = requester.task_info(task_id)
    assert info.status == TaskStatus.OPEN
    assert (info.committee_size, info.quorum, info.reward) == (3, 2, reward)
    assert info.requester == requester.account.address
    assert (info.program_id, info.params_digest) == (PROGRAM, PARAMS)

    form(chain, nodes[:3], task_id)
    gas["form_committee"] = nodes[0].last_tx.gas_used
    for i, n in enumerate(nodes[:3]):
        assert n.node_info().locked == SEAT_COLLATERAL
        assert n.seat_index(task_id, n.account.address) == i
    assert nodes[3].seat_index(task_id, nodes[3].account.address) is None
    info = requester.task_info(task_id)
    assert info.status == TaskStatus.COMPUTING and info.seats_taken == 3
    assert requester.seats(task_id) == [n.account.address for n in nodes[:3]]

    result = b"mean=42.000000;count=3"
    sigs = sign_all(chain, nodes[:3], task_id, result)
    for n, s in zip(nodes[:3], sigs, strict=True):
        dep = chain.deployment
        signer = recover_signer(dep.chain_id, dep.address, task_id, result_digest(result), s)
        assert signer == n.account.address
    # seats 0 and 2 sign (a quorum of 2 out of 3)
    nodes[0].report(task_id, result, [sigs[2], sigs[0]])
    gas["report"] = nodes[0].last_tx.gas_used
    status, digest, stored = requester.result_of(task_id)
    assert status == TaskStatus.REPORTED and digest == result_digest(result) and stored == result
    assert requester.signers_bitmap(task_id) == 0b101
    assert requester.task_info(task_id).reported_at > 0

    chain.advance(CHALLENGE_PERIOD + 1)
    requester.finalize(task_id)
    gas["finalize"] = requester.last_tx.gas_used
    assert requester.task_info(task_id).status == TaskStatus.FINALIZED

    share = reward // 2
    assert nodes[0].credits() == share + (reward - 2 * share)
    assert nodes[1].credits() == 0
    assert nodes[2].credits() == share
    for n in nodes:
        assert n.node_info().locked == 0
    total = sum(n.node_info().stake + n.credits() for n in nodes) + requester.credits()
    assert chain.w3.eth.get_balance(chain.deployment.address) == total

    before = chain.w3.eth.get_balance(nodes[2].account.address)
    nodes[2].withdraw()
    gas["withdraw"] = nodes[2].last_tx.gas_used
    receipt = chain.w3.eth.get_transaction_receipt(nodes[2].last_tx.tx_hash)
    paid_gas = nodes[2].last_tx.gas_used * receipt["effectiveGasPrice"]
    after = chain.w3.eth.get_balance(nodes[2].account.address)
    assert after - before == share - paid_gas
    assert nodes[2].credits() == 0

    names = [e.name for e in requester.events(chain.deployment.deploy_block)]
    for expected in ("TaskPosted", "CommitteeFormed", "ResultReported", "TaskFinalized"):
        assert expected in names
    assert names.index("TaskFinalized") > names.index("ResultReported")
    print("\ngas per lifecycle step (m=3, first task on a fresh deployment):")
    for k, v in gas.items():
        print(f"  {k:<16} {v:>8}")


def test_record_digest_matches_contract(chain: Chain, funded) -> None:
    nodes = setup_nodes(chain, funded, 3)
    requester = funded("requester")
    task_id = post(chain, requester)
    form(chain, nodes, task_id)
    rec = requester.task_record(task_id)
    word = int(requester._call("tasks", task_id))
    assert word & ~0xFF == rec.digest() and word & 0xFF == TaskStatus.COMPUTING
    # a record with one member swapped is rejected: no call can act on another committee
    rec.committee[1] = nodes[0].account.address
    with pytest.raises(TransactionReverted, match="market: bad task record"):
        nodes[0]._transact("finalize", "finalize", task_id, rec.as_abi())


def test_registry_views_and_peer_ownership(chain: Chain, funded) -> None:
    a, b = funded("a"), funded("b")
    a.register("12D3KooWpeerA", 3)
    assert a.node_of_peer("12D3KooWpeerA") == a.account.address
    info = a.node_info()
    assert (info.peer_id, info.capabilities, info.stake) == ("12D3KooWpeerA", 3, 0)
    with pytest.raises(TransactionReverted, match="registry: peer id taken"):
        b.register("12D3KooWpeerA", 1)
    # re-register under a new peer id frees the old one
    a.register("12D3KooWpeerA2", 1)
    assert a.node_of_peer("12D3KooWpeerA") is None
    b.register("12D3KooWpeerA", 1)
    assert a.node_of_peer("12D3KooWpeerA") == b.account.address
    assert not a.is_active(a.account.address)
    a.stake(ETHER)
    assert a.is_active(a.account.address)
    assert chain.client(None).params()["seat_collateral"] == SEAT_COLLATERAL
    assert make_account("a").address == a.account.address
