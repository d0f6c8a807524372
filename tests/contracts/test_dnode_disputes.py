"""Litigation: dispute within the window, re-execution by a larger disjoint committee, the
result replaced (original signers unpaid, never slashed) or upheld (the disputer's bond pays
the re-execution), and the re-execution timeouts."""

from __future__ import annotations

import pytest
from dnode_chain import CHALLENGE_PERIOD, ETHER, SEAT_COLLATERAL, Chain, by_rank
from test_dnode_lifecycle import joins, post, setup_nodes, sign_all

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.errors import TransactionReverted

BOND = SEAT_COLLATERAL  # deploy() default: dispute bond = seat collateral
# a dispute posts max(dispute_bond, reward): the fixture's reward is one ether
POSTED = max(BOND, ETHER)
BURN = "0x" + "00" * 20


def reverts(reason: str):
    return pytest.raises(TransactionReverted, match=reason)


def balance_ok(chain: Chain, clients: list[ChainClient], escrow: int, bonds: int) -> None:
    total = escrow + bonds + clients[0].credits(BURN)
    spares = [c for (cid, _), c in _spares.items() if cid == id(chain)]
    unique = {c.account.address: c for c in [*clients, *spares]}
    for c in unique.values():
        info = c.node_info()
        total += info.stake + info.unbonding + c.credits()
    assert chain.w3.eth.get_balance(chain.deployment.address) == total


@pytest.fixture
def reported(chain: Chain, funded):
    """Task 1: committee nodes[0..2] (the best-ranked), all three signed b"wrong"; 5 more
    nodes for the rerun (and two spare nodes staked before the dispute, see _staked)."""
    nodes = setup_nodes(chain, funded, 8)
    _staked(chain, "extra")
    _staked(chain, "r5")
    requester = funded("requester")
    task_id = post(chain, requester)
    nodes = by_rank(requester, nodes, task_id)
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:3], task_id)]
    nodes[0].form_committee(task_id, [n.account.address for n in nodes[:3]], sigs)
    nodes[0].report(task_id, b"wrong", sign_all(chain, nodes[:3], task_id, b"wrong"))
    return nodes, requester, task_id


def form_rerun(chain: Chain, nodes: list[ChainClient], task_id: int) -> None:
    chain.open_window()
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:], task_id, 1)]
    nodes[0].form_rerun_committee(task_id, [n.account.address for n in nodes], sigs)


def test_dispute_overturns_without_slashing_signers(chain: Chain, reported) -> None:
    nodes, requester, task_id = reported
    everyone = [*nodes, requester]
    disputer = nodes[7]
    with reverts("market: wrong bond"):  # the bond is max(dispute_bond, reward)
        disputer._transact(
            "dispute", "dispute", task_id, requester.task_record(task_id).as_abi(), value=BOND
        )
    disputer.dispute(task_id)
    assert requester.task_status(task_id) == TaskStatus.DISPUTED
    balance_ok(chain, everyone, ETHER, POSTED)
    with reverts("market: not reported"):
        nodes[6].dispute(task_id)
    with reverts("oracle: not reported"):
        requester.finalize(task_id)
    # the rerun committee: m + 2 = 5 seats, disjoint from the first, not the disputer
    with reverts("market: wrong committee size"):
        form_rerun(chain, nodes[3:7], task_id)
    with reverts("market: member not eligible"):
        form_rerun(chain, [*nodes[3:7], nodes[0]], task_id)
    with reverts("market: member not eligible"):
        form_rerun(chain, [*nodes[3:7], disputer], task_id)
    # join intents for round 0 do not count for the rerun
    addrs = [n.account.address for n in nodes[2:7]]
    with reverts("market: member not eligible"):
        nodes[3].form_rerun_committee(task_id, addrs, [None] * 5)
    rerun = [*nodes[3:7]]
    extra = _staked(chain, "extra")
    rerun.append(extra)
    form_rerun(chain, rerun, task_id)
    assert requester.task_status(task_id) == TaskStatus.RECOMPUTING
    assert requester.rerun_seats(task_id) == [n.account.address for n in rerun]
    everyone.append(extra)
    stakes = [n.node_info().stake for n in nodes[:3]]
    # quorum of the rerun committee is 3 of 5; the original signers cannot sign it
    with reverts("oracle: no quorum"):
        rerun[0].report_rerun(task_id, b"right", sign_all(chain, rerun[:2], task_id, b"right"))
    with reverts("oracle: signer not in committee"):
        mixed = sign_all(chain, [rerun[0], rerun[1], nodes[0]], task_id, b"right")
        rerun[0].report_rerun(task_id, b"right", mixed)
    rerun[0].report_rerun(task_id, b"right", sign_all(chain, rerun[:4], task_id, b"right"))
    assert requester.task_status(task_id) == TaskStatus.OVERTURNED
    status, _, result = requester.result_of(task_id)
    assert (status, result) == (TaskStatus.OVERTURNED, b"right")
    # a differing re-execution is no evidence against the original signers (its inputs are
    # not bound to round 0's): released unslashed and unpaid. The requester's reward pays the
    # re-execution signers, the disputer gets its bond back, nothing is burned.
    assert [n.node_info().stake for n in nodes[:3]] == stakes
    assert all(n.credits() == 0 for n in nodes[:3])
    assert disputer.credits() == POSTED
    assert requester.credits() == 0
    assert all(n.node_info().locked == 0 for n in everyone)
    assert sum(n.credits() for n in rerun[:4]) == ETHER and rerun[4].credits() == 0
    assert requester.credits(BURN) == 0
    balance_ok(chain, everyone, 0, 0)
    with reverts("market: no dispute to resolve"):
        requester.resolve_dispute(task_id)


def _funded(chain: Chain, label: str) -> ChainClient:
    from dnode_chain import make_account

    acct = make_account(label)
    chain.fund(acct)
    return chain.client(acct)


def test_dispute_upheld_bond_pays_the_rerun(chain: Chain, reported) -> None:
    nodes, requester, task_id = reported
    with reverts("market: wrong bond"):
        requester._transact(
            "dispute", "dispute", task_id, requester.task_record(task_id).as_abi(), value=1
        )
    outsider = _funded(chain, "outsider")
    with reverts("market: disputer not requester or staked node"):
        outsider.dispute(task_id)
    requester.dispute(task_id)  # the requester itself may dispute
    rerun = [*nodes[3:8]]
    form_rerun(chain, rerun, task_id)
    rerun[4].decline(task_id, "no capacity")
    with reverts("oracle: no quorum"):  # the declined seat's signature does not count
        rerun[0].report_rerun(
            task_id, b"wrong", sign_all(chain, [rerun[0], rerun[1], rerun[4]], task_id, b"wrong")
        )
    rerun[0].report_rerun(task_id, b"wrong", sign_all(chain, rerun[:3], task_id, b"wrong"))
    assert requester.task_status(task_id) == TaskStatus.FINALIZED
    # the bond (max(dispute_bond, reward) = the reward here) pays the re-execution signers
    # the reward, as an overturn would; the original signers get the reward plus the rest
    per = ETHER // 3
    credits = [n.credits() for n in nodes[:3]]
    assert sum(credits) == ETHER + POSTED - ETHER and min(credits) == per
    assert sum(n.credits() for n in rerun[:3]) == ETHER
    assert requester.credits() == 0
    assert all(n.node_info().locked == 0 for n in nodes)
    balance_ok(chain, [*nodes, requester], 0, 0)


def test_dispute_window_and_rerun_never_forms(chain: Chain, reported) -> None:
    nodes, requester, task_id = reported
    period = int(requester.params()["dispute_period"])
    nodes[6].dispute(task_id)
    with reverts("market: re-execution seating open"):
        requester.resolve_dispute(task_id)
    chain.advance(period // 4 + 1)
    with reverts("market: seat deadline passed"):
        form_rerun(chain, nodes[3:8], task_id)
    requester.resolve_dispute(task_id)  # original result stands, nobody slashed
    assert requester.task_status(task_id) == TaskStatus.FINALIZED
    # not a free delay: the disputer pays the signers min(reward, dispute_bond)
    fee = min(ETHER, BOND)
    assert nodes[6].credits() == POSTED - fee
    assert sum(n.credits() for n in nodes[:3]) == ETHER + fee
    balance_ok(chain, [*nodes, requester], 0, 0)


def test_rerun_committee_misses_deadline_is_slashed(chain: Chain, reported) -> None:
    nodes, requester, task_id = reported
    period = int(requester.params()["dispute_period"])
    nodes[7].dispute(task_id)
    rerun = [*nodes[2:7]]
    with reverts("market: member not eligible"):
        form_rerun(chain, rerun, task_id)
    rerun = [*nodes[3:7], _staked(chain, "r5")]
    form_rerun(chain, rerun, task_id)
    rerun[0].decline(task_id, "gpu failure")
    with reverts("market: re-execution still due"):
        requester.resolve_dispute(task_id)
    chain.advance(period + 1)
    with reverts("oracle: report deadline passed"):
        rerun[1].report_rerun(task_id, b"x", sign_all(chain, rerun[1:4], task_id, b"x"))
    requester.resolve_dispute(task_id)
    # 4 rerun seats did not deliver: slashed, paid to the original signers with the reward
    # (they cover the delay fee, so the disputer gets its whole bond back)
    assert [n.node_info().stake for n in rerun] == [2 * ETHER] + [2 * ETHER - SEAT_COLLATERAL] * 4
    assert sum(n.credits() for n in nodes[:3]) == ETHER + 4 * SEAT_COLLATERAL
    assert nodes[7].credits() == POSTED
    balance_ok(chain, [*nodes, requester, rerun[4]], 0, 0)


def test_no_dispute_after_window(chain: Chain, reported) -> None:
    nodes, requester, task_id = reported
    chain.advance(CHALLENGE_PERIOD + 1)
    with reverts("market: challenge window closed"):
        requester.dispute(task_id)
    requester.finalize(task_id)
    with reverts("market: not reported"):
        requester.dispute(task_id)


_spares: dict[tuple[int, str], ChainClient] = {}


def _staked(chain: Chain, label: str) -> ChainClient:
    """A staked node; the fixture stakes the spares before posting, so they are in the
    slot snapshot (slots added after a dispute are never drawn for its re-execution)."""
    key = (id(chain), label)
    if key not in _spares:
        c = _funded(chain, label)
        c.register(f"12D3KooW{label}", 1)
        c.stake(2 * ETHER)
        _spares[key] = c
    return _spares[key]
