"""Every rejection path surfaces as TransactionReverted with the contract's namespaced reason."""

from __future__ import annotations

import pytest
from dnode_chain import (
    CHALLENGE_PERIOD,
    ETHER,
    SEAT_COLLATERAL,
    UNBOND_DELAY,
    Chain,
    make_account,
    new_chain,
    shutdown_all,
)
from test_dnode_lifecycle import PARAMS, PROGRAM, form, joins, post, setup_nodes, sign_all

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.errors import InsufficientFunds, TransactionReverted
from dnode.oracle.attestation import sign_report


def reverts(reason: str):
    return pytest.raises(TransactionReverted, match=reason)


@pytest.fixture
def world(chain: Chain, funded):
    nodes = setup_nodes(chain, funded, 5)
    requester = funded("requester")
    return nodes, requester


def computing_task(chain: Chain, nodes: list[ChainClient], requester: ChainClient) -> int:
    task_id = post(chain, requester, 3)
    form(chain, nodes[:3], task_id)
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
    with reverts("market: reward below minimum"):
        p(reward=0)
    with reverts("market: reward below minimum"):
        p(reward=int(requester.params()["min_reward"]) - 1)
    with reverts("market: bad capability"):
        p(capability=3)
    with reverts("market: seat deadline in the past"):
        p(seat_deadline=now - 1)
    with reverts("market: deadline too far"):
        p(seat_deadline=1 << 40)
    with reverts("market: compute window below minimum"):
        p(compute_window=int(requester.params()["min_compute_window"]) - 1)
    with reverts("market: compute window too long"):
        p(compute_window=(1 << 32) + 1)
    assert requester.task_count() == 0


def test_committee_formation_rules(chain: Chain, funded, world) -> None:
    nodes, requester = world
    task_id = post(chain, requester, 3)
    addrs = [n.account.address for n in nodes]
    sigs = joins(chain, nodes, task_id)
    with reverts("market: wrong committee size"):
        nodes[0].form_committee(task_id, addrs[:2], [None, sigs[1]])
    with reverts("market: duplicate member"):
        nodes[0].form_committee(task_id, [addrs[0], addrs[1], addrs[1]], [None, sigs[1], sigs[1]])
    # a member who did not sign (and is not the sender) cannot be seated
    with reverts("market: bad join signature"):
        nodes[0].form_committee(task_id, addrs[:3], [None, sigs[1], sigs[3]])
    # a join intent for another task or round is not consent for this one
    other = post(chain, requester, 3)
    with reverts("market: bad join signature"):
        nodes[0].form_committee(task_id, addrs[:3], [None, sigs[1], joins(chain, nodes, other)[2]])
    with reverts("market: bad join signature"):
        rerun = joins(chain, nodes, task_id, 1)
        nodes[0].form_committee(task_id, addrs[:3], [None, sigs[1], rerun[2]])
    stranger = funded("stranger")
    s_sig = joins(chain, [stranger], task_id)[0]
    with reverts("registry: not registered"):
        nodes[0].form_committee(task_id, [addrs[0], addrs[1], stranger.account.address],
                                [None, sigs[1], s_sig])  # fmt: skip
    stranger.register("12D3KooWstranger", 1)
    with reverts("registry: node not active"):
        nodes[0].form_committee(task_id, [addrs[0], addrs[1], stranger.account.address],
                                [None, sigs[1], s_sig])  # fmt: skip
    he_only = funded("he")
    he_only.register("12D3KooWhe", 2)
    he_only.stake(2 * ETHER)
    he_sig = joins(chain, [he_only], task_id)[0]
    with reverts("registry: missing capability"):
        nodes[0].form_committee(task_id, [addrs[0], addrs[1], he_only.account.address],
                                [None, sigs[1], he_sig])  # fmt: skip
    # the requester never sits on its own task's committee
    requester.register("12D3KooWreq", 1)
    requester.stake(2 * ETHER)
    r_sig = joins(chain, [requester], task_id)[0]
    with reverts("market: member not eligible"):
        nodes[0].form_committee(task_id, [addrs[0], addrs[1], requester.account.address],
                                [None, sigs[1], r_sig])  # fmt: skip
    # anyone may submit when every member signed
    he_only.form_committee(task_id, addrs[:3], sigs[:3])
    assert requester.task_info(task_id).status == TaskStatus.COMPUTING
    with reverts("market: task not open"):
        nodes[3].form_committee(task_id, addrs[2:5], [sigs[2], None, sigs[4]])
    late = post(chain, requester, 3)
    chain.advance(200)
    with reverts("market: seat deadline passed"):
        form(chain, nodes[:3], late)


def test_collateral_limits_concurrent_seats() -> None:
    # min stake = collateral, stake = 2 collaterals: exactly two concurrent seats
    chain = new_chain(min_stake=SEAT_COLLATERAL)

    def funded(label: str) -> ChainClient:
        acct = make_account(label)
        chain.fund(acct)
        return chain.client(acct)

    nodes = setup_nodes(chain, funded, 3, stake=2 * SEAT_COLLATERAL)
    requester = funded("requester")
    for _ in range(2):
        form(chain, nodes, post(chain, requester))
    assert nodes[0].node_info().locked == 2 * SEAT_COLLATERAL
    with reverts("registry: node not active"):
        form(chain, nodes, post(chain, requester))
    shutdown_all()


def test_locked_stake_cannot_be_unbonded(chain: Chain, world) -> None:
    nodes, requester = world
    computing_task(chain, nodes, requester)
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

    # signed by a non-member
    with reverts("oracle: signer not in committee"):
        nodes[3].report(task_id, result, [sigs[0], outsider_sig[0]])
    # the same signature twice
    with reverts("oracle: duplicate signer"):
        nodes[0].report(task_id, result, [sigs[0], sigs[0]])
    with reverts("oracle: no quorum"):
        nodes[0].report(task_id, result, [sigs[0]])
    # replayed for another task (same committee): the task id is in the signed message
    with reverts("oracle: signer not in committee"):
        nodes[0].report(other, result, sigs[:2])
    # and the result bytes are bound too
    with reverts("oracle: signer not in committee"):
        nodes[0].report(task_id, b"forged", sigs[:2])
    bad_v = sigs[1][:64] + bytes([29])
    with reverts("market: bad signature v"):
        nodes[0].report(task_id, result, [sigs[0], bad_v])
    with reverts("oracle: malformed signature"):
        nodes[0]._transact(
            "report",
            "report",
            task_id,
            nodes[0].task_record(task_id).as_abi(),
            result,
            sigs[0] + sigs[1][:64],
        )
    # malleated twin (s -> n - s, v flipped) recovers the same signer but is rejected
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sigs[1][32:64], "big")
    twin = sigs[1][:32] + (n - s).to_bytes(32, "big") + bytes([55 - sigs[1][64]])
    with reverts("market: high-s signature"):
        nodes[0].report(task_id, result, [sigs[0], twin])
    # replayed from another chain id, or for another deployment: a foreign signer
    dep = chain.deployment
    foreign = sign_report(nodes[1].account, dep.chain_id + 1, dep.address, task_id, result)
    with reverts("oracle: signer not in committee"):
        nodes[0].report(task_id, result, [sigs[0], foreign])
    elsewhere = sign_report(nodes[1].account, dep.chain_id, "0x" + "11" * 20, task_id, result)
    with reverts("oracle: signer not in committee"):
        nodes[0].report(task_id, result, [sigs[0], elsewhere])

    nodes[0].report(task_id, result, sigs)
    assert requester.signers_bitmap(task_id) == 0b111
    with reverts("oracle: task not computing"):
        nodes[0].report(task_id, result, sigs)
    with reverts("market: unknown task"):
        nodes[0]._transact("finalize", "finalize", 999, nodes[0].task_record(task_id).as_abi())


def test_late_report_cancel_slashes_undelivered(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = computing_task(chain, nodes, requester)
    sigs = sign_all(chain, nodes[:3], task_id, b"x")
    nodes[2].decline(task_id, "mpc: out of memory")
    with reverts("market: already declined"):
        nodes[2].decline(task_id, "again")
    with reverts("market: not a seat holder"):
        nodes[3].decline(task_id, "not mine")
    with reverts("oracle: no quorum"):  # a declined seat's signature does not count
        nodes[0].report(task_id, b"x", [sigs[0], sigs[2]])
    with reverts("market: report still due"):
        requester.cancel(task_id)
    stakes = [n.node_info().stake for n in nodes]
    chain.advance(1001)
    with reverts("oracle: report deadline passed"):
        nodes[0].report(task_id, b"x", sigs[:2])
    with reverts("market: report deadline passed"):
        nodes[1].decline(task_id, "too late")
    nodes[4].cancel(task_id)  # anyone may trigger it; the requester is refunded
    # the two seats that neither reported nor declined lose one collateral each, burned
    assert requester.credits() == ETHER
    assert requester.credits("0x" + "00" * 20) == 2 * SEAT_COLLATERAL
    assert [n.node_info().stake for n in nodes] == [
        stakes[0] - SEAT_COLLATERAL,
        stakes[1] - SEAT_COLLATERAL,
        *stakes[2:],
    ]
    assert requester.task_info(task_id).status == TaskStatus.REFUNDED
    assert all(n.node_info().locked == 0 for n in nodes)
    with reverts("market: not cancellable"):
        requester.cancel(task_id)
    with reverts("oracle: not reported"):
        requester.finalize(task_id)


def test_declines_that_break_quorum_allow_immediate_cancel(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = computing_task(chain, nodes, requester)
    nodes[0].decline(task_id, "program not installed")
    with reverts("market: report still due"):
        requester.cancel(task_id)
    nodes[1].decline(task_id, "capacity")
    requester.cancel(task_id)  # no quorum possible any more: no slashing, full refund
    assert requester.credits() == ETHER
    assert all(n.node_info().stake == 2 * ETHER and n.node_info().locked == 0 for n in nodes)


def test_cancel_unformed_task(chain: Chain, world) -> None:
    _, requester = world
    task_id = post(chain, requester, 4)
    with reverts("market: seating still open"):
        requester.cancel(task_id)
    chain.advance(101)
    requester.cancel(task_id)
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
    with reverts("market: not cancellable"):
        requester.cancel(task_id)
    chain.advance(CHALLENGE_PERIOD + 1)
    requester.finalize(task_id)
    # double finalize
    with reverts("oracle: already finalized"):
        requester.finalize(task_id)
    with reverts("market: not cancellable"):
        requester.cancel(task_id)
    # a dispute after the window
    with reverts("market: not reported"):
        requester.dispute(task_id)
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
