"""Every rejection path surfaces as TransactionReverted with the contract's namespaced reason."""

from __future__ import annotations

import pytest
from dnode_chain import CHALLENGE_PERIOD, ETHER, SEAT_COLLATERAL, UNBOND_DELAY, Chain
from test_dnode_lifecycle import PARAMS, PROGRAM, post, setup_nodes, sign_all

from contracts.client import ChainClient, TaskStatus
from contracts.errors import InsufficientFunds, TransactionReverted
from oracle.attestation import sign_report


def reverts(reason: str):
    return pytest.raises(TransactionReverted, match=reason)


@pytest.fixture
def world(chain: Chain, funded):
    nodes = setup_nodes(chain, funded, 5)
    requester = funded("requester")
    return nodes, requester


def computing_task(chain: Chain, nodes: list[ChainClient], requester: ChainClient) -> int:
    task_id = post(chain, requester, 3)
    for n in nodes[:3]:
        n.claim_seat(task_id)
    return task_id


def test_post_task_validation(chain: Chain, world) -> None:
    _, requester = world
    now = chain.now()

    def p(**kw):
        args = dict(
            capability=1,
            committee_size=3,
            seat_deadline=now + 100,
            report_deadline=now + 1000,
            reward=ETHER,
        )
        args.update(kw)
        return requester.post_task(PROGRAM, PARAMS, **args)

    with reverts("market: committee too small"):
        p(committee_size=2)
    with reverts("market: committee too large"):
        p(committee_size=17)
    with reverts("market: zero reward"):
        p(reward=0)
    with reverts("market: bad capability"):
        p(capability=3)
    with reverts("market: seat deadline in the past"):
        p(seat_deadline=now - 1)
    with reverts("market: report deadline before seat deadline"):
        p(report_deadline=now + 100)
    assert requester.task_count() == 0


def test_claim_rules(chain: Chain, funded, world) -> None:
    nodes, requester = world
    task_id = post(chain, requester, 3)
    nodes[0].claim_seat(task_id)
    with reverts("market: already seated"):
        nodes[0].claim_seat(task_id)
    stranger = funded("stranger")
    with reverts("market: not registered"):
        stranger.claim_seat(task_id)
    stranger.register("12D3KooWstranger", 1)
    with reverts("market: node not active"):
        stranger.claim_seat(task_id)
    he_only = funded("he")
    he_only.register("12D3KooWhe", 2)
    he_only.stake(2 * ETHER)
    with reverts("market: missing capability"):
        he_only.claim_seat(task_id)
    nodes[1].claim_seat(task_id)
    nodes[2].claim_seat(task_id)
    with reverts("market: committee full"):
        nodes[3].claim_seat(task_id)
    with reverts("market: task not open"):
        nodes[3].claim_seat(99)
    late = post(chain, requester, 3)
    chain.advance(200)
    with reverts("market: seat deadline passed"):
        nodes[0].claim_seat(late)


def test_locked_stake_cannot_be_unbonded(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = post(chain, requester, 3)
    nodes[0].claim_seat(task_id)
    stake = nodes[0].node_info().stake
    with reverts("registry: stake locked or insufficient"):
        nodes[0].unbond(stake - SEAT_COLLATERAL + 1)
    nodes[0].unbond(stake - SEAT_COLLATERAL)
    info = nodes[0].node_info()
    assert (info.stake, info.locked) == (SEAT_COLLATERAL, SEAT_COLLATERAL)
    assert not nodes[0].is_active(nodes[0].account.address)


def test_report_rejections(chain: Chain, funded, world) -> None:
    nodes, requester = world
    task_id = computing_task(chain, nodes, requester)
    other = computing_task(chain, nodes, requester)
    result = b"r"
    sigs = sign_all(chain, nodes[:3], task_id, result)
    outsider_sig = sign_all(chain, nodes[3:4], task_id, result)

    with reverts("oracle: signer not in committee"):
        nodes[3].report(task_id, result, [sigs[0], outsider_sig[0]])
    with reverts("oracle: duplicate signer"):
        nodes[0].report(task_id, result, [sigs[0], sigs[0]])
    with reverts("oracle: no quorum"):
        nodes[0].report(task_id, result, [sigs[0]])
    # signatures are bound to the task id: valid sigs for task_id cannot report `other`
    with reverts("oracle: signer not in committee"):
        nodes[0].report(other, result, sigs[:2])
    # and to the result bytes
    with reverts("oracle: signer not in committee"):
        nodes[0].report(task_id, b"forged", sigs[:2])
    bad_v = sigs[1][:64] + bytes([29])
    with reverts("oracle: bad signature v"):
        nodes[0].report(task_id, result, [sigs[0], bad_v])
    with reverts("oracle: malformed signature"):
        nodes[0].report(task_id, result, [sigs[0], sigs[1][:64]])
    # malleated twin (s -> n - s, v flipped) recovers the same signer but is rejected
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sigs[1][32:64], "big")
    twin = sigs[1][:32] + (n - s).to_bytes(32, "big") + bytes([55 - sigs[1][64]])
    with reverts("oracle: high-s signature"):
        nodes[0].report(task_id, result, [sigs[0], twin])
    # a signature for another chain id is just a foreign signer
    dep = chain.deployment
    foreign = sign_report(nodes[1].account, dep.chain_id + 1, dep.address, task_id, result)
    with reverts("oracle: signer not in committee"):
        nodes[0].report(task_id, result, [sigs[0], foreign])

    nodes[0].report(task_id, result, sigs)
    assert requester.signers_bitmap(task_id) == 0b111
    with reverts("oracle: already reported"):
        nodes[0].report(task_id, result, sigs)
    with reverts("oracle: task not computing"):
        nodes[0].report(999, result, sigs)


def test_late_report_and_refund(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = computing_task(chain, nodes, requester)
    sigs = sign_all(chain, nodes[:3], task_id, b"x")
    with reverts("market: report still due"):
        requester.refund(task_id)
    chain.advance(1001)
    with reverts("oracle: report deadline passed"):
        nodes[0].report(task_id, b"x", sigs)
    before = requester.credits()
    nodes[4].refund(task_id)  # anyone may trigger it; the requester is credited
    assert requester.credits() == before + ETHER
    assert requester.task_info(task_id).status == TaskStatus.REFUNDED
    assert all(n.node_info().locked == 0 for n in nodes)
    with reverts("market: not refundable"):
        requester.refund(task_id)
    with reverts("oracle: not reported"):
        requester.finalize(task_id)


def test_refund_of_unfilled_task(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = post(chain, requester, 4)
    nodes[0].claim_seat(task_id)
    with reverts("market: seating still open"):
        requester.refund(task_id)
    chain.advance(101)
    requester.refund(task_id)
    assert nodes[0].node_info().locked == 0
    assert requester.credits() == ETHER
    balance = chain.w3.eth.get_balance(requester.account.address)
    requester.withdraw()
    assert chain.w3.eth.get_balance(requester.account.address) > balance
    with reverts("registry: nothing to withdraw"):
        requester.withdraw()


def test_finalize_rules(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = computing_task(chain, nodes, requester)
    with reverts("oracle: not reported"):
        requester.finalize(task_id)
    nodes[0].report(task_id, b"ok", sign_all(chain, nodes[:3], task_id, b"ok"))
    with reverts("oracle: challenge period active"):
        requester.finalize(task_id)
    with reverts("market: not refundable"):
        requester.refund(task_id)
    chain.advance(CHALLENGE_PERIOD + 1)
    requester.finalize(task_id)
    with reverts("oracle: already finalized"):
        requester.finalize(task_id)
    with reverts("market: not refundable"):
        requester.refund(task_id)
    assert sum(n.credits() for n in nodes[:3]) == ETHER


def test_unbonding_flow(chain: Chain, world) -> None:
    nodes, _ = world
    n = nodes[0]
    with reverts("registry: nothing unbonding"):
        n.withdraw_unbonded()
    n.unbond(ETHER)
    info = n.node_info()
    assert info.unbonding == ETHER and info.unbond_at >= chain.now() + UNBOND_DELAY - 1
    with reverts("registry: unbonding not matured"):
        n.withdraw_unbonded()
    chain.advance(UNBOND_DELAY + 1)
    n.withdraw_unbonded()
    assert n.credits() == ETHER and n.node_info().unbonding == 0
    with reverts("registry: zero amount"):
        n.unbond(0)
    with reverts("registry: zero stake"):
        n.stake(0)


def test_insufficient_funds_is_checked_before_sending(chain: Chain, world) -> None:
    nodes, _ = world
    balance = chain.w3.eth.get_balance(nodes[0].account.address)
    with pytest.raises(InsufficientFunds):
        nodes[0].stake(balance)
    with pytest.raises(InsufficientFunds):
        nodes[0].stake(balance + 1)
