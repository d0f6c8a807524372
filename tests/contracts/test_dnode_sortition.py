"""Committee sortition on-chain: slots, draws, window, seed, price, capacity, refund reasons;
and the off-chain ranking (scheduler.sortition over a model of the slots) agreeing with it."""

from __future__ import annotations

import pytest
from dnode_chain import ETHER, SEAT_COLLATERAL, Chain
from test_dnode_lifecycle import PARAMS, PROGRAM, joins, setup_nodes

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.scheduler.candidates import candidates_for
from dnode.scheduler.sortition import (
    MAX_DRAW,
    SEED_LIFETIME,
    SKIP_DELAY,
    SlotTable,
    draw_position,
    rank,
)


def reverts(reason: str):
    return pytest.raises(TransactionReverted, match=reason)


def post(requester: ChainClient, chain: Chain, reward: int = ETHER, seat_s: int = 100) -> int:
    now = chain.now()
    return requester.post_task(
        PROGRAM,
        PARAMS,
        capability=1,
        committee_size=3,
        seat_deadline=now + seat_s,
        report_deadline=now + seat_s + 1000,
        reward=reward,
    )


def model_of(nodes: list[ChainClient]) -> SlotTable:
    """The slots as the contract should hold them: nodes staked in order, 64 slots per call."""
    t = SlotTable(SEAT_COLLATERAL)
    for n in nodes:
        t.set_stake(n.account.address, n.node_info().stake, max_append=64)
    return t


def test_slots_follow_stake_lazily(chain: Chain, funded) -> None:
    a = funded("big")
    a.register("12D3KooWbig", 1)
    a.stake(10 * ETHER)  # owed 100 slots; one call appends 64
    assert a.slots_owned(a.account.address) == 64 and a.slot_count() == 64
    with reverts("registry: not registered"):
        a.sync_slots(funded("nobody").account.address)
    b = funded("other")
    b.sync_slots(a.account.address)  # anyone may append a node's owed slots
    assert a.slots_owned(a.account.address) == 100 and a.slot_count() == 100
    with reverts("registry: slots in sync"):
        a.sync_slots()
    assert a.slot_holder(99) == a.account.address
    a.unbond(5 * ETHER)  # slots k >= 50 stop counting; nothing moves
    assert a.slot_holder(49) == a.account.address and a.slot_holder(50) is None
    assert a.slot_holder(100) is None  # past the end
    a.stake(ETHER)  # revives k = 50..59 without appending
    assert a.slot_holder(59) == a.account.address and a.slot_holder(60) is None
    assert a.slot_count() == 100
    # one batched round trip reads what a call per slot reads (misses and the end included)
    positions = list(range(0, 101))
    one_by_one = {p: a.slot_holder(p) for p in positions}
    a.slot_holder = None  # type: ignore[assignment,method-assign]  # the batch path only
    assert a.slot_holders(positions) == one_by_one


def test_offchain_ranking_is_what_the_contract_accepts(chain: Chain, funded) -> None:
    nodes = setup_nodes(chain, funded, 6)
    nodes[5].stake(3 * ETHER)  # unequal stakes
    requester = funded("requester")
    task_id = post(requester, chain)
    with reverts("sortition: seed block not mined yet"):
        nodes[0].form_committee(task_id, [n.account.address for n in nodes[:3]], [None] * 3)
    chain.mine(1)
    info = requester.task_info(task_id)
    assert info.seed_block == requester.last_tx.block_number + 1
    cands = candidates_for(requester, info)
    assert cands is not None
    # the same ranking from the model of the slots (no chain reads but the seed)
    model = model_of(nodes)
    assert requester.slot_count() == model.slot_count
    p = cands.pool
    assert p.slot_count == info.slot_snapshot == model.slot_count
    theirs = rank(p.seed, task_id, 0, p.slot_count, model.holder, lambda a: None, 4096, want=6)
    chain.open_window()
    ours = candidates_for(requester, requester.task_info(task_id))
    assert ours is not None
    r = ours.ranking(want=6)
    assert [(c.address, c.draw) for c in r.candidates] == [
        (c.address, c.draw) for c in theirs.candidates
    ]
    top = r.candidates[:3]
    by_addr = {n.account.address: n for n in nodes}
    members = [c.address for c in top]
    draws = [c.draw for c in top]
    sigs = [None, *joins(chain, [by_addr[a] for a in members[1:]], task_id)]
    submitter = by_addr[members[0]]
    # claiming someone else's draw, or a draw outside the window, is rejected
    with reverts("sortition: member not drawn"):
        submitter.form_committee(task_id, members, sigs, [draws[1], draws[0], draws[2]])
    with reverts("sortition: draw too deep"):
        submitter.form_committee(task_id, members, sigs, [draws[0], draws[1], MAX_DRAW + 1])
    submitter.form_committee(task_id, members, sigs, draws)
    assert requester.seats(task_id) == members
    for j, a in zip(draws, members, strict=True):
        pos = draw_position(p.seed, task_id, 0, j, p.slot_count)
        assert pos is not None and requester.slot_holder(pos) == a


def test_price_and_capacity_are_enforced_per_seat(chain: Chain, funded) -> None:
    nodes = setup_nodes(chain, funded, 4)
    requester = funded("requester")
    addrs = [n.account.address for n in nodes]
    nodes[2].set_terms(ETHER // 2, 4)  # asks 0.5 ETH per seat
    nodes[1].set_terms(0, 1)  # holds one seat at most
    terms = nodes[2].node_terms(addrs[2])
    assert (terms.price, terms.capacity, terms.declared) == (ETHER // 2, 4, True)
    with reverts("registry: bad capacity"):
        nodes[0].set_terms(0, 0)
    task_id = post(requester, chain, reward=ETHER)  # offer: 1/3 ETH per seat
    chain.open_window()
    sigs = joins(chain, nodes, task_id)
    with reverts("registry: price above offer"):
        nodes[0].form_committee(task_id, addrs[:3], [None, sigs[1], sigs[2]])
    nodes[0].form_committee(task_id, [addrs[0], addrs[1], addrs[3]], [None, sigs[1], sigs[3]])
    # a richer task pays nodes[2]'s price; nodes[1] is at capacity now
    task2 = post(requester, chain, reward=3 * ETHER)
    chain.open_window()
    sigs = joins(chain, nodes, task2)
    with reverts("registry: node at capacity"):
        nodes[0].form_committee(task2, addrs[:3], [None, sigs[1], sigs[2]])
    nodes[0].form_committee(task2, [addrs[0], addrs[2], addrs[3]], [None, sigs[2], sigs[3]])
    assert requester.task_status(task2) == TaskStatus.COMPUTING


def test_refund_reasons(chain: Chain, funded) -> None:
    nodes = setup_nodes(chain, funded, 3)
    requester = funded("requester")
    unfilled = post(requester, chain, seat_s=30)
    with reverts("market: seating still open"):
        requester.cancel(unfilled)
    chain.advance(31)
    requester.cancel(unfilled)
    info = requester.task_info(unfilled)
    assert info.status == TaskStatus.REFUNDED
    assert info.refund_reason == "sortition: seats not filled"
    # a seed older than blockhash reaches: cancellable at once, with its own reason
    expired = post(requester, chain, seat_s=10_000)
    chain.mine(SEED_LIFETIME + 1)  # the next block is 257 past the seed block
    addrs = [n.account.address for n in nodes]
    with reverts("sortition: seed expired"):
        nodes[0].form_committee(expired, addrs, [None, *joins(chain, nodes[1:], expired)])
    requester.cancel(expired)
    assert requester.task_info(expired).refund_reason == "sortition: seed expired"
    assert requester.credits() == 2 * ETHER


def test_skip_budget_grows_with_time(chain: Chain, funded) -> None:
    nodes = setup_nodes(chain, funded, 5)
    by = {n.account.address: n for n in nodes}
    requester = funded("requester")
    task_id = post(requester, chain)
    chain.mine(1)
    c = candidates_for(requester, requester.task_info(task_id))
    assert c is not None and c.pool.budget == 0
    top = c.ranking().candidates
    worse = [top[0], top[1], top[3]]  # skips the third-ranked node
    members = [x.address for x in worse]
    sigs = [None, *joins(chain, [by[a] for a in members[1:]], task_id)]
    with reverts("sortition: skips over budget"):
        by[members[0]].form_committee(task_id, members, sigs, [x.draw for x in worse])
    chain.advance(SKIP_DELAY)
    c = candidates_for(requester, requester.task_info(task_id))
    assert c is not None and c.pool.budget == 1
    by[members[0]].form_committee(task_id, members, sigs, [x.draw for x in worse])
    info = requester.task_info(task_id)
    assert info.skips == 1 and info.committee == tuple(members)


def test_formation_gas_does_not_grow_with_the_registry(chain: Chain, funded) -> None:
    """The check reads the slots of the draws ranked above the worst member only: forming
    the best-ranked committee costs about the same with 4 registered nodes and with 44
    (scripts/gas_report.py measures 10 vs 1,000). Ineligible owners drawn above a member
    cost one slot and one account read each."""
    nodes = setup_nodes(chain, funded, 4)
    requester = funded("requester")
    by = {n.account.address: n for n in nodes}

    def formation_gas() -> int:
        task_id = post(requester, chain)
        chain.mine(1)
        c = candidates_for(requester, requester.task_info(task_id))
        assert c is not None
        top = c.ranking(want=3).candidates
        members = [x.address for x in top]
        sigs = [None, *joins(chain, [by[a] for a in members[1:]], task_id)]
        gas = by[members[0]].form_committee(task_id, members, sigs, [x.draw for x in top]).gas_used
        for a in members:  # free the seats for the next probe
            by[a].decline(task_id, "gas probe")
        return gas

    small = formation_gas()
    for i in range(40):
        c = funded(f"filler{i}")
        c.register(f"12D3KooWfiller{i}", 1)
        c.stake(2 * ETHER)
        by[c.account.address] = c
    assert requester.slot_count() == 44 * 20
    large = formation_gas()
    print("formation gas", small, large)
    assert large <= small + 2000, (small, large)  # fewer repeats in a larger registry
