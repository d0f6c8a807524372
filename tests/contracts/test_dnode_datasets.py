"""The data marketplace on-chain (datasets.vy, run by the dnode_data extension): attacks first.

Every rule that protects an owner's money or its data's privacy budget is attacked here:
budget top-up, overspending by concurrent tasks, posting after expiry or retirement, a
program the owner did not allow, non-owner updates, settling twice, refunds that must give
the budget back, and one owner withdrawing another's credit.
"""

from __future__ import annotations

import pytest
from dnode_chain import CHALLENGE_PERIOD, ETHER, Chain
from eth_utils import function_abi_to_4byte_selector, keccak
from test_dnode_lifecycle import PARAMS, form, setup_nodes, sign_all

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.compile import VYPER_DIR, compile_contracts
from dnode.contracts.data_market import MICRO, BudgetKind, TaskDataset
from dnode.contracts.errors import (
    BudgetExhausted,
    DatasetExpired,
    DatasetRefused,
    DatasetRetired,
    NotDatasetOwner,
    NothingToSettle,
    ProgramNotAllowed,
    TaskNotEnded,
    TransactionReverted,
    UnknownDataset,
    WrongDataPayment,
)

MEAN = keccak(text="stats.mean")
HIST = keccak(text="stats.histogram")
SCHEMA = keccak(text="schema: age int, income int")
PRICE = ETHER // 100
REWARD = ETHER // 10


def publish(chain: Chain, owner: ChainClient, **kw: object) -> int:
    args: dict = {
        "schema_digest": SCHEMA,
        "rows": 1000,
        "price": PRICE,
        "expiry": chain.now() + 10_000,
        "programs": [MEAN],
        "budget": 1 * MICRO,
        "locator": "https://example.org/sample.csv",
        **kw,
    }
    return owner.register_dataset(**args)


def post_over(
    chain: Chain, requester: ChainClient, ids: list[int], costs: list[int], **kw: object
) -> int:
    return requester.post_data_task(
        kw.pop("program", MEAN),  # type: ignore[arg-type]
        PARAMS,
        datasets=ids,
        costs=costs,
        reward=REWARD,
        seat_deadline=chain.now() + 100,
        **kw,  # type: ignore[arg-type]
    )


def run_to_finalized(chain: Chain, nodes: list[ChainClient], task_id: int) -> None:
    chain.open_window()
    form(chain, nodes, task_id)
    result = b"mean=42"
    nodes[0].report(task_id, result, sign_all(chain, nodes, task_id, result))
    chain.advance(CHALLENGE_PERIOD + 1)
    nodes[0].finalize(task_id)


def refund(chain: Chain, requester: ChainClient, task_id: int) -> None:
    """Nobody seats the task: after its seat deadline it is cancelled with a full refund."""
    chain.advance(101)
    requester.cancel(task_id)
    assert requester.task_status(task_id) == TaskStatus.REFUNDED


def conserved(chain: Chain, clients: list[ChainClient]) -> None:
    c = clients[0]
    total = sum(x.node_info().stake + x.credits() for x in clients) + c.data_escrow()
    open_escrow = sum(
        c.task_info(t).reward
        for t in range(1, c.task_count() + 1)
        if c.task_status(t)
        not in (TaskStatus.FINALIZED, TaskStatus.REFUNDED, TaskStatus.OVERTURNED)
    )
    assert c.balance_of_contract() == total + open_escrow


# ------------------------------------------------------------------ registry


def test_register_show_and_update(chain: Chain, funded) -> None:
    owner = funded("owner")
    expiry = chain.now() + 5000
    ds = publish(chain, owner, expiry=expiry, programs=[MEAN, HIST], budget_kind=BudgetKind.RHO)
    assert ds == 1 and owner.dataset_count() == 1
    info = owner.dataset_info(ds)
    assert info.owner == owner.account.address and info.exists
    assert (info.schema_digest, info.rows, info.price, info.expiry) == (SCHEMA, 1000, PRICE, expiry)
    assert (info.budget_kind, info.budget, info.spent, info.retired) == (
        BudgetKind.RHO,
        MICRO,
        0,
        False,
    )
    assert info.programs == (MEAN, HIST) and info.locator == "https://example.org/sample.csv"
    owner.update_dataset(ds, price=2 * PRICE, programs=[HIST], locator="ipfs://x")
    info = owner.dataset_info(ds)
    assert (info.price, info.programs, info.locator, info.expiry) == (
        2 * PRICE,
        (HIST,),
        "ipfs://x",
        expiry,
    )
    owner.retire_dataset(ds)
    assert owner.dataset_info(ds).retired
    names = [e.name for e in owner.events(chain.deployment.deploy_block)]
    assert names.count("DatasetRegistered") == 1 and "DatasetUpdated" in names
    assert "DatasetRetired" in names
    assert not owner.dataset_info(99).exists


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"schema_digest": b"\0" * 32}, "datasets: empty schema digest"),
        ({"programs": []}, "datasets: no program allowed"),
        ({"rows": 1 << 40}, "datasets: row count too large"),
        ({"budget": 0}, "datasets: bad privacy budget"),
        ({"budget": 1 << 64}, "datasets: bad privacy budget"),
        ({"budget_kind": 3}, "datasets: bad budget kind"),
        ({"price": 1 << 96}, "datasets: price too large"),
        ({"expiry": 1}, "datasets: expiry in the past"),
        ({"expiry": 1 << 40}, "datasets: expiry too far"),
    ],
)
def test_register_checks_bounds(chain: Chain, funded, kw: dict, reason: str) -> None:
    owner = funded("owner")
    with pytest.raises(DatasetRefused, match=reason):
        publish(chain, owner, **kw)


def test_attack_budget_top_up_is_impossible(chain: Chain, funded) -> None:
    """No path raises a budget: update has no budget field, a refund releases only what the
    task charged, and re-settling a refund cannot release it twice."""
    owner, requester = funded("owner"), funded("requester")
    ds = publish(chain, owner, budget=MICRO)
    # the data functions have no way to name a budget except at registration
    data_fns = {
        e["name"]: e for e in chain.deployment.interfaces["dnode_data"] if e["type"] == "function"
    }
    for name in ("update_dataset", "retire_dataset"):
        assert all("budget" not in i["name"] for i in data_fns[name]["inputs"])
    owner.update_dataset(ds, price=PRICE)
    assert owner.budget_left(ds) == MICRO
    # the owner buys over its own data and has the task refunded: the budget comes back to
    # exactly where it was, never above
    t = post_over(chain, owner, [ds], [MICRO // 2])
    assert owner.budget_left(ds) == MICRO // 2
    refund(chain, owner, t)
    requester.settle_datasets(t)
    assert owner.budget_left(ds) == MICRO
    with pytest.raises(NothingToSettle):
        requester.settle_datasets(t)
    assert owner.budget_left(ds) == MICRO and owner.dataset_info(ds).spent == 0


def test_attack_non_owner_cannot_update_or_retire(chain: Chain, funded) -> None:
    owner, mallory = funded("owner"), funded("mallory")
    ds = publish(chain, owner)
    with pytest.raises(NotDatasetOwner, match="datasets: not the owner"):
        mallory._data_transact("update_dataset", ds, 0, chain.now() + 100, [HIST], "evil")
    with pytest.raises(NotDatasetOwner):
        mallory.retire_dataset(ds)
    with pytest.raises(UnknownDataset):
        mallory.retire_dataset(ds + 1)
    assert owner.dataset_info(ds).price == PRICE and not owner.dataset_info(ds).retired
    owner.retire_dataset(ds)
    with pytest.raises(DatasetRetired):
        owner.update_dataset(ds, price=1)
    with pytest.raises(DatasetRetired):
        owner.retire_dataset(ds)


# ------------------------------------------------------------------ posting


def test_attack_overspend_by_two_concurrent_tasks(chain: Chain, funded) -> None:
    owner, a, b = funded("owner"), funded("a"), funded("b")
    ds = publish(chain, owner, budget=MICRO)
    t1 = post_over(chain, a, [ds], [600_000])
    with pytest.raises(BudgetExhausted, match="datasets: privacy budget exhausted"):
        post_over(chain, b, [ds], [600_000])
    assert owner.budget_left(ds) == 400_000
    post_over(chain, b, [ds], [400_000])  # exactly what is left
    assert owner.budget_left(ds) == 0
    with pytest.raises(BudgetExhausted):
        post_over(chain, b, [ds], [1])
    # a refund gives its cost back; the other task keeps its charge
    refund(chain, a, t1)
    a.settle_datasets(t1)
    assert owner.budget_left(ds) == 600_000


def test_attack_post_after_expiry_or_retirement(chain: Chain, funded) -> None:
    owner, requester = funded("owner"), funded("requester")
    expiry = chain.now() + 500
    ds1 = publish(chain, owner, expiry=expiry)
    ds2 = publish(chain, owner)
    owner.retire_dataset(ds2)
    with pytest.raises(DatasetRetired, match="datasets: dataset retired"):
        post_over(chain, requester, [ds1, ds2], [1, 1])
    chain.travel_to(expiry)
    with pytest.raises(DatasetExpired, match="datasets: dataset expired"):
        post_over(chain, requester, [ds1], [1])
    with pytest.raises(UnknownDataset):
        post_over(chain, requester, [7], [1])
    # the owner may extend a live dataset's expiry; then it sells again
    owner.update_dataset(ds1, expiry=chain.now() + 500)
    post_over(chain, requester, [ds1], [1])
    assert owner.budget_left(ds2) == MICRO  # refused posts charged nothing


def test_attack_program_not_allowed(chain: Chain, funded) -> None:
    owner, requester = funded("owner"), funded("requester")
    ds = publish(chain, owner, programs=[MEAN])
    other = publish(chain, owner, programs=[MEAN, HIST])
    with pytest.raises(ProgramNotAllowed, match="datasets: program not allowed"):
        post_over(chain, requester, [other, ds], [1, 1], program=HIST)
    assert owner.budget_left(other) == MICRO  # the whole post reverted
    post_over(chain, requester, [other], [1], program=HIST)


def test_attack_underpay_and_price_raised_after_looking(chain: Chain, funded) -> None:
    owner, requester = funded("owner"), funded("requester")
    ds = publish(chain, owner)
    agreed = requester.data_task_price([ds])
    owner.update_dataset(ds, price=10 * PRICE)  # front-runs the requester's post
    with pytest.raises(WrongDataPayment, match="datasets: payment is not reward plus prices"):
        post_over(chain, requester, [ds], [1], prices=agreed)
    with pytest.raises(WrongDataPayment):
        post_over(chain, requester, [ds], [1], prices=10 * PRICE + 1)
    with pytest.raises(TransactionReverted, match="market: reward below minimum"):
        requester.post_data_task(
            MEAN, PARAMS, datasets=[ds], costs=[1], reward=0, seat_deadline=chain.now() + 100
        )


@pytest.mark.parametrize(
    ("ids", "costs", "reason"),
    [
        ([], [], "datasets: no dataset named"),
        ([1], [1, 2], "datasets: one cost per dataset"),
        ([1, 1], [1, 1], "datasets: duplicate dataset"),
        ([1], [0], "datasets: zero privacy cost"),
    ],
)
def test_post_checks_its_lists(chain: Chain, funded, ids: list, costs: list, reason: str) -> None:
    owner = funded("owner")
    publish(chain, owner)
    with pytest.raises(DatasetRefused, match=reason):
        post_over(chain, owner, ids, costs, prices=0 if not ids else PRICE * len(ids))


# ------------------------------------------------------------------ settlement


def test_finalized_task_pays_owners_once_and_each_withdraws_only_its_own(
    chain: Chain, funded
) -> None:
    nodes = setup_nodes(chain, funded, 3)
    alice, bob, carol, requester = (funded(n) for n in ("alice", "bob", "carol", "requester"))
    ids = [publish(chain, o, price=PRICE * (i + 1)) for i, o in enumerate((alice, bob, carol))]
    t = post_over(chain, requester, ids, [100_000, 200_000, 300_000])
    assert requester.data_escrow() == 6 * PRICE
    info = requester.task_info(t)
    assert info.reward == REWARD
    assert info.datasets == (
        TaskDataset(ids[0], 100_000, PRICE),
        TaskDataset(ids[1], 200_000, 2 * PRICE),
        TaskDataset(ids[2], 300_000, 3 * PRICE),
    )
    assert [d.dataset_id for d in requester.pending_datasets(t)] == ids
    assert [alice.budget_left(i) for i in ids] == [900_000, 800_000, 700_000]
    with pytest.raises(TaskNotEnded, match="datasets: task not ended"):
        requester.settle_datasets(t)
    conserved(chain, [*nodes, alice, bob, carol, requester])
    run_to_finalized(chain, nodes, t)
    conserved(chain, [*nodes, alice, bob, carol, requester])
    nodes[1].settle_datasets(t)  # anyone may settle
    assert [c.credits() for c in (alice, bob, carol)] == [PRICE, 2 * PRICE, 3 * PRICE]
    assert requester.data_escrow() == 0 and requester.pending_datasets(t) == []
    # a finished task keeps its budget charge
    assert [alice.budget_left(i) for i in ids] == [900_000, 800_000, 700_000]
    with pytest.raises(NothingToSettle, match="datasets: nothing to settle"):
        requester.settle_datasets(t)
    assert [c.credits() for c in (alice, bob, carol)] == [PRICE, 2 * PRICE, 3 * PRICE]
    conserved(chain, [*nodes, alice, bob, carol, requester])
    # bob withdraws its own credit and nothing of alice's
    before = bob.balance_of(bob.account.address)
    bob.withdraw()
    gas = (
        bob.last_tx.gas_used
        * chain.w3.eth.get_transaction_receipt(bob.last_tx.tx_hash)["effectiveGasPrice"]
    )
    assert bob.balance_of(bob.account.address) == before + 2 * PRICE - gas
    assert alice.credits() == PRICE and bob.credits() == 0
    with pytest.raises(TransactionReverted):
        bob.withdraw()  # nothing left: no second payout
    conserved(chain, [*nodes, alice, bob, carol, requester])


def test_attack_abort_after_the_opening_does_not_release_the_budget(chain: Chain, funded) -> None:
    """Issue 18: a committee formed, its seats may have opened (noisy) outputs, then the task
    failed and was refunded (a coalition that aborts after the opening, or a missed report).
    The requester gets its money back, but the privacy budget stays charged: it is released
    only for a task refunded before any committee sat."""
    nodes = setup_nodes(chain, funded, 3)
    owner, requester = funded("owner"), funded("requester")
    ds = publish(chain, owner)
    t = post_over(chain, requester, [ds], [300_000])
    chain.open_window()
    form(chain, nodes, t)
    chain.advance(requester.task_info(t).report_deadline - chain.now() + 1)
    requester.cancel(t)
    assert requester.task_status(t) == TaskStatus.REFUNDED
    owner.settle_datasets(t)
    assert owner.budget_left(ds) == MICRO - 300_000  # kept
    assert owner.dataset_info(ds).spent == 300_000
    assert requester.credits() >= PRICE  # the price came back with the reward
    assert requester.data_escrow() == 0
    # money is conserved: the silent seats' burned collateral sits with the zero address
    burned = requester.credits("0x" + "00" * 20)
    total = sum(x.node_info().stake + x.credits() for x in [*nodes, owner, requester])
    assert requester.balance_of_contract() == total + burned


def test_refund_returns_prices_and_budget(chain: Chain, funded) -> None:
    owner, requester = funded("owner"), funded("requester")
    ds = publish(chain, owner)
    t = post_over(chain, requester, [ds], [250_000])
    refund(chain, requester, t)
    assert requester.credits() == REWARD  # the task escrow came back through cancel
    owner.settle_datasets(t)
    assert requester.credits() == REWARD + PRICE and owner.credits() == 0
    assert owner.budget_left(ds) == MICRO and requester.data_escrow() == 0
    conserved(chain, [owner, requester])


def test_settle_of_a_task_without_datasets_or_unknown(chain: Chain, funded) -> None:
    requester = funded("requester")
    t = requester.post_task(
        MEAN, PARAMS, seat_deadline=chain.now() + 100, reward=REWARD, committee_size=3
    )
    refund(chain, requester, t)
    with pytest.raises(NothingToSettle):
        requester.settle_datasets(t)


# ------------------------------------------------------------------ the extension itself


def test_data_extension_called_directly_moves_nothing(chain: Chain, funded) -> None:
    owner = funded("owner")
    ds = publish(chain, owner)
    main = chain.w3.eth.contract(address=chain.deployment.address, abi=chain.deployment.abi)
    data = chain.w3.eth.contract(
        address=main.functions.data().call(), abi=chain.deployment.interfaces["dnode_data"]
    )
    assert data.functions.dataset_count().call() == 0
    assert data.functions.dataset_info(ds).call()[0] == "0x" + "00" * 20
    # plain ETH and unknown selectors still revert at dnode
    with pytest.raises(Exception):  # noqa: B017 - any revert
        chain.w3.eth.send_transaction(
            {"from": chain.w3.eth.accounts[0], "to": chain.deployment.address, "value": 1}
        )


def test_dnode_routes_every_data_function() -> None:
    """dnode's selector set must name every data function, or a call would reach the court
    (and revert there) instead."""
    art = compile_contracts()
    data_fns = {
        e["name"]: function_abi_to_4byte_selector(e)
        for e in art["dnode_data"]["abi"]
        if e["type"] == "function"
    }
    main = {e["name"] for e in art["dnode"]["abi"] if e["type"] == "function"}
    routed = {n for n in data_fns if n not in main}
    src = (VYPER_DIR / "dnode.vy").read_text()
    for name in routed:
        assert f'"{name}(' in src, f"{name} is not routed by dnode.__default__"
    assert len(routed) == src.count("or sel == SEL_") + 1
