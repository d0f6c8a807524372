"""Consumer contracts (docs/protocol.md, "Consuming results"): the example PriceFeed dApp gets
the decoded mean by callback; consumers that revert, burn their gas, return huge data or try
to re-enter never block finalization or anyone's payment; the gas cap cannot be starved."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from dnode_chain import ATTACKERS, CHALLENGE_PERIOD, ETHER, Chain, by_rank
from test_dnode_disputes import balance_ok, form_rerun
from test_dnode_lifecycle import joins, setup_nodes, sign_all

from dnode.contracts.client import MAX_CALLBACK_GAS, ChainClient, TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.programs import get_program

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
MEAN_ID = get_program("mpc.mean").program_id
PARAMS = b"\x02" * 32
CAP = 300_000
RECORD, REVERT, BURN, HUGE, REENTER = range(5)
MEAN = AggregateResult.from_fraction(Fraction(8417, 20), 20)  # 420.85 over 20 values


class Consumer:
    """A deployed consumer contract that posts tasks through `act` (bad_consumer.vy)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.contract = chain.deploy_vyper(ATTACKERS / "bad_consumer.vy", chain.deployment.address)
        self.address = self.contract.address
        self.dnode = chain.client(None).contract
        self.sender = chain.w3.eth.accounts[0]

    def data(self, fn: str, *args: Any) -> bytes:
        return bytes.fromhex(self.dnode.encode_abi(fn, args=list(args))[2:])

    def tx(self, fn: Any, value: int = 0) -> Any:
        receipt = self.chain.w3.eth.wait_for_transaction_receipt(
            fn.transact({"from": self.sender, "value": value})
        )
        assert receipt["status"] == 1
        return receipt

    def post(self, gas: int = CAP, reward: int = ETHER) -> int:
        now = self.chain.now()
        args = (MEAN_ID, PARAMS, 1, 3, now + 100, 900, self.address, gas)
        self.tx(self.contract.functions.act(self.data("post_task", *args), reward), reward)
        return self.chain.client(None).task_count()

    def arm(self, mode: int, calls: list[bytes] | None = None) -> None:
        self.tx(self.contract.functions.arm(mode, calls or []))

    def view(self, name: str) -> Any:
        return getattr(self.contract.functions, name)().call()


@pytest.fixture
def nodes(chain: Chain, funded) -> list[ChainClient]:
    return setup_nodes(chain, funded, 9)


def form_and_report(
    chain: Chain, nodes: list[ChainClient], task_id: int, result: bytes = MEAN.encode()
) -> None:
    chain.open_window()
    nodes[:] = by_rank(chain.client(None), nodes, task_id)  # the best-ranked three sit
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:3], task_id)]
    nodes[0].form_committee(task_id, [n.account.address for n in nodes[:3]], sigs)
    nodes[0].report(task_id, result, sign_all(chain, nodes[:3], task_id, result))


def delivered(chain: Chain, task_id: int) -> list[dict[str, Any]]:
    return [
        e.args
        for e in chain.client(None).events(chain.deployment.deploy_block)
        if e.name == "CallbackDelivered" and e.args["task_id"] == task_id
    ]


def paid_as_usual(chain: Chain, nodes: list[ChainClient], reward: int = ETHER) -> None:
    """Each of the 3 signers got a third (dust to seat 0), collateral unlocked, withdrawable."""
    share = reward // 3
    assert [n.credits() for n in nodes[:3]] == [reward - 2 * share, share, share]
    assert all(n.node_info().locked == 0 for n in nodes)
    for n in nodes[:3]:
        n.withdraw()
        assert n.credits() == 0


# ------------------------------------------------------------------ the example dApp


def deploy_feed(chain: Chain) -> Any:
    return chain.deploy_vyper(EXAMPLES / "price_feed.vy", chain.deployment.address, MEAN_ID)


def test_price_feed_receives_the_decoded_mean(chain: Chain, nodes) -> None:
    feed = deploy_feed(chain)
    owner = chain.w3.eth.accounts[0]
    outsider = chain.w3.eth.accounts[1]
    with pytest.raises(Exception, match="feed: not owner"):
        feed.functions.request(PARAMS, 3, 100, 1000).call({"from": outsider, "value": ETHER})
    tx = feed.functions.request(PARAMS, 3, 100, 1000).transact({"from": owner, "value": ETHER})
    chain.w3.eth.wait_for_transaction_receipt(tx)
    task_id = 1
    info = nodes[0].task_info(task_id)
    assert info.requester == feed.address and info.callback == feed.address
    assert info.callback_gas == 150_000 and info.record and info.record.seed_block > 0
    assert feed.functions.pending(task_id).call()

    form_and_report(chain, nodes, task_id)
    status, digest, stored = nodes[0].stored_result(task_id)
    assert (status, stored) == (TaskStatus.REPORTED, MEAN.encode())
    # the callback can only come from dnode, for a task the feed posted
    with pytest.raises(Exception, match="feed: caller is not dnode"):
        feed.functions.on_task_result(task_id, MEAN.encode()).call({"from": outsider})
    chain.advance(CHALLENGE_PERIOD + 1)
    with pytest.raises(Exception, match="feed: no final result"):
        feed.functions.sync(task_id).call({"from": outsider})
    nodes[5].finalize(task_id)

    f = feed.functions
    assert f.price().call() == MEAN.value == 420_850_000_000_000_000_000
    assert (f.decimals().call(), f.samples().call(), f.updated_by().call()) == (18, 20, task_id)
    assert not f.pending(task_id).call()
    assert delivered(chain, task_id) == [
        {"task_id": task_id, "callback": feed.address, "success": True}
    ]
    assert nodes[0].task_info(task_id).callback_ok is True
    status, digest, stored = nodes[0].stored_result(task_id)
    assert status == TaskStatus.FINALIZED and stored == MEAN.encode()
    assert digest == nodes[0].task_info(task_id).result_digest
    # a second application of the same task is refused
    with pytest.raises(Exception, match="feed: not a pending request"):
        f.sync(task_id).call({"from": outsider})
    paid_as_usual(chain, nodes)
    balance_ok(chain, nodes, 0, 0)


def test_price_feed_recovers_an_overturned_task_and_sweeps_a_refund(chain: Chain, nodes) -> None:
    """A dispute replaces the result: no callback; sync applies the re-execution's result
    (whose committee the reward paid: nothing is refunded). A cancelled task's refund reaches
    the owner through dnode's pull payment."""
    feed = deploy_feed(chain)
    owner = chain.w3.eth.accounts[0]
    tx = feed.functions.request(PARAMS, 3, 100, 1000).transact({"from": owner, "value": ETHER})
    chain.w3.eth.wait_for_transaction_receipt(tx)
    wrong = AggregateResult((1,), 18, 20).encode()
    form_and_report(chain, nodes, 1, wrong)
    nodes[8].dispute(1)
    rerun = nodes[3:8]
    form_rerun(chain, rerun, 1)
    nodes[3].report_rerun(1, MEAN.encode(), sign_all(chain, rerun[:3], 1, MEAN.encode()))
    assert nodes[0].task_status(1) == TaskStatus.OVERTURNED
    assert delivered(chain, 1) == [] and feed.functions.price().call() == 0
    assert nodes[0].stored_result(1)[1:] == (
        nodes[0].task_info(1).dispute.result_digest,  # type: ignore[union-attr]
        MEAN.encode(),
    )
    chain.w3.eth.wait_for_transaction_receipt(feed.functions.sync(1).transact({"from": owner}))
    assert feed.functions.price().call() == MEAN.value
    # the reward paid the re-execution; slashed collateral never goes to the requester
    assert nodes[0].credits(feed.address) == 0
    tx = feed.functions.request(PARAMS, 3, 100, 1000).transact({"from": owner, "value": ETHER})
    chain.w3.eth.wait_for_transaction_receipt(tx)
    chain.advance(101)
    nodes[0].cancel(2)  # no committee: refunded
    refund = ETHER
    assert nodes[0].credits(feed.address) == refund
    before = chain.w3.eth.get_balance(owner)
    receipt = chain.w3.eth.wait_for_transaction_receipt(
        feed.functions.sweep().transact({"from": owner})
    )
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.w3.eth.get_balance(owner) == before + refund - fee
    assert nodes[0].credits(feed.address) == 0 and chain.w3.eth.get_balance(feed.address) == 0
    balance_ok(chain, nodes, 0, 0)


# ------------------------------------------------------------------ misbehaving consumers


@pytest.mark.parametrize("mode", [REVERT, BURN, HUGE])
def test_misbehaving_consumer_blocks_nobody(chain: Chain, nodes, mode: int) -> None:
    c = Consumer(chain)
    c.arm(mode)
    task_id = c.post()
    form_and_report(chain, nodes, task_id)
    chain.advance(CHALLENGE_PERIOD + 1)
    nodes[4].finalize(task_id)
    assert nodes[0].task_status(task_id) == TaskStatus.FINALIZED
    ok = mode == HUGE
    assert delivered(chain, task_id) == [{"task_id": task_id, "callback": c.address, "success": ok}]
    assert c.view("calls") == (1 if ok else 0)  # a failed callback's writes are undone
    if mode == BURN:  # the consumer really had its whole cap to burn
        assert nodes[4].last_tx.gas_used > CAP  # type: ignore[union-attr]
    paid_as_usual(chain, nodes)
    balance_ok(chain, nodes, 0, 0)


def test_reentering_consumer_is_locked_out_but_reads_views(chain: Chain, nodes) -> None:
    c = Consumer(chain)
    task_id = c.post(gas=MAX_CALLBACK_GAS)  # reading its armed calldata is costly
    form_and_report(chain, nodes, task_id)
    rec = nodes[0].task_record(task_id)
    now = chain.now()
    calls = [
        c.data("finalize", task_id, rec.as_abi()),
        c.data("withdraw"),
        c.data("cancel", task_id, rec.as_abi()),
        c.data("post_task", MEAN_ID, PARAMS, 1, 3, now + 100, 1900),
        c.data("dispute", task_id, rec.as_abi()),  # the court shares the lock
    ]
    c.arm(REENTER, calls)
    chain.advance(CHALLENGE_PERIOD + 1)
    nodes[4].finalize(task_id)
    assert (c.view("attempts"), c.view("succeeded")) == (len(calls), 0)
    assert delivered(chain, task_id)[0]["success"] is True
    # during the call dnode's state was already final and its views readable
    assert c.view("seen_task") == task_id and c.view("seen_result") == MEAN.encode()
    assert c.view("seen_status") == TaskStatus.FINALIZED
    assert c.view("seen_digest") == nodes[0].task_info(task_id).result_digest
    assert nodes[0].task_count() == 1
    paid_as_usual(chain, nodes)
    balance_ok(chain, nodes, 0, 0)


def test_finalizer_cannot_starve_the_callback(chain: Chain, nodes) -> None:
    """With less gas than cap * 64/63 + margin left at the call, finalize reverts: nobody can
    make a consumer fail by sending the transaction with too little gas."""
    c = Consumer(chain)
    c.arm(BURN)
    task_id = c.post()
    form_and_report(chain, nodes, task_id)
    chain.advance(CHALLENGE_PERIOD + 1)
    rec = nodes[0].task_record(task_id)
    fn = nodes[4].contract.functions.finalize(task_id, rec.as_abi())
    sender = {"from": nodes[4].account.address}
    with pytest.raises(Exception, match="oracle: gas below callback cap"):
        fn.call({**sender, "gas": CAP + 40_000})
    # the least gas that passes (eth_estimateGas) still hands the consumer its whole cap,
    # which it burns: the transaction uses more than the cap
    least = fn.estimate_gas(sender)
    nodes[4].finalize(task_id)
    assert CAP < nodes[4].last_tx.gas_used <= least  # type: ignore[union-attr]
    assert delivered(chain, task_id)[0]["success"] is False
    assert nodes[0].task_status(task_id) == TaskStatus.FINALIZED


@pytest.mark.parametrize("how", ["upheld", "rerun_missed"])
def test_callback_on_dispute_paths_that_finalize(chain: Chain, nodes, how: str) -> None:
    c = Consumer(chain)
    task_id = c.post()
    form_and_report(chain, nodes, task_id)
    nodes[8].dispute(task_id)
    if how == "upheld":
        rerun = nodes[3:8]
        form_rerun(chain, rerun, task_id)
        sigs = sign_all(chain, rerun[:3], task_id, MEAN.encode())
        rerun[0].report_rerun(task_id, MEAN.encode(), sigs)
    else:
        chain.advance(int(nodes[0].params()["dispute_period"]))
        nodes[1].resolve_dispute(task_id)
    assert nodes[0].task_status(task_id) == TaskStatus.FINALIZED
    assert delivered(chain, task_id)[0]["success"] is True
    assert (c.view("seen_task"), c.view("seen_result")) == (task_id, MEAN.encode())
    assert c.view("seen_status") == TaskStatus.FINALIZED
    balance_ok(chain, nodes, 0, 0)


def test_refunded_task_gets_no_callback(chain: Chain, nodes) -> None:
    c = Consumer(chain)
    task_id = c.post()
    chain.advance(101)
    nodes[0].cancel(task_id)
    assert delivered(chain, task_id) == [] and c.view("calls") == 0
    assert nodes[0].stored_result(task_id) == (TaskStatus.REFUNDED, b"\0" * 32, b"")
    assert nodes[0].credits(c.address) == ETHER


def test_post_task_callback_rules_and_plain_tasks_unchanged(chain: Chain, nodes, funded) -> None:
    req = funded("requester")
    now = chain.now()
    kw: dict[str, Any] = {
        "capability": 1,
        "committee_size": 3,
        "seat_deadline": now + 100,
        "report_deadline": now + 1000,
        "reward": ETHER,
    }
    with pytest.raises(TransactionReverted, match="market: callback gas too high"):
        req.post_task(MEAN_ID, PARAMS, callback=req.account.address,
                      callback_gas=MAX_CALLBACK_GAS + 1, **kw)  # fmt: skip
    zero = "0x" + "00" * 20
    with pytest.raises(TransactionReverted, match="market: callback gas without callback"):
        req.post_task(MEAN_ID, PARAMS, callback=zero, callback_gas=1, **kw)
    # publish-only: the result is stored for result_of, no call is made (cap 0)
    pub = req.post_task(MEAN_ID, PARAMS, callback=req.account.address, callback_gas=0, **kw)
    plain = req.post_task(MEAN_ID, PARAMS, **kw)
    assert req.task_info(plain).callback is None and req.task_info(pub).callback_gas == 0
    for task_id in (pub, plain):
        form_and_report(chain, nodes, task_id)
    chain.advance(CHALLENGE_PERIOD + 1)
    for task_id in (pub, plain):
        nodes[0].finalize(task_id)
        assert delivered(chain, task_id) == []
    assert req.stored_result(pub) == (
        TaskStatus.FINALIZED,
        req.task_info(pub).result_digest,
        MEAN.encode(),
    )
    # a plain task's result is only in the event log (the off-chain reader has it)
    assert req.stored_result(plain) == (TaskStatus.FINALIZED, b"\0" * 32, b"")
    assert req.result_of(plain)[2] == MEAN.encode()
    assert req.stored_result(99) == (TaskStatus.NONE, b"\0" * 32, b"")


def test_manifest_carries_the_consumer_interface(chain: Chain, tmp_path: Path) -> None:
    dep = chain.deployment
    dep.save(tmp_path / "deployment.json")
    loaded = type(dep).load(tmp_path / "deployment.json")
    assert loaded.interfaces == dep.interfaces
    (consumer,) = loaded.interfaces["IDnodeConsumer"]
    assert consumer["name"] == "on_task_result"
    assert [i["type"] for i in consumer["inputs"]] == ["uint256", "bytes"]

    def sig(e: dict[str, Any]) -> tuple[Any, ...]:
        return (e["name"], tuple(i["type"] for i in e["inputs"]),
                tuple(o["type"] for o in e["outputs"]), e["stateMutability"])  # fmt: skip

    # every IDnodeOracle function is in dnode's ABI, with the same types (dnode.vy also
    # declares `implements: IDnodeOracle`, so the compiler checks it too)
    main = {sig(e) for e in loaded.abi if e.get("type") == "function"}
    oracle = loaded.interfaces["IDnodeOracle"]
    assert {e["name"] for e in oracle} == {
        "post_task", "result_of", "task_status", "credits", "withdraw"
    }  # fmt: skip
    assert {sig(e) for e in oracle} <= main


def test_reader_decodes_public_and_private_results_and_watches(chain: Chain, nodes, funded):
    """oracle.reader: a public aggregate decodes to its values, an HE result to its blob digest
    and locator only; watch yields final results in chain order, bounded by a count."""
    from dnode.node.he.result import blob_locator, encode_report
    from dnode.oracle.errors import ResultNotAvailable, UnknownTask
    from dnode.oracle.reader import read, watch

    he_nodes = []
    for i in range(3):
        n = funded(f"he{i}")
        n.register(f"12D3KooWhe{i}", 3)
        n.stake(2 * ETHER)
        he_nodes.append(n)
    req = funded("requester")
    now = chain.now()
    kw: dict[str, Any] = {"seat_deadline": now + 100, "report_deadline": now + 1000}
    public = req.post_task(MEAN_ID, PARAMS, reward=ETHER, **kw)
    private = req.post_task(get_program("he.mean").program_id, PARAMS, capability=2,
                            reward=ETHER, **kw)  # fmt: skip
    blob = b"\x5a" * 32
    form_and_report(chain, nodes, public)
    form_and_report(chain, he_nodes, private, encode_report(blob))
    with pytest.raises(UnknownTask, match="task 9 does not exist"):
        read(req, 9)
    r = read(req, public)
    assert (r.status, r.final, r.value, r.private) == (TaskStatus.REPORTED, False, MEAN, None)
    assert r.program == "mpc.mean" and r.callback is None and "420.85" in r.line()
    chain.advance(CHALLENGE_PERIOD + 1)
    start = chain.w3.eth.block_number
    nodes[0].finalize(public)
    he_nodes[0].finalize(private)
    got = list(watch(req, from_block=start, limit=2, timeout=60, poll=0.1))
    assert [g.task_id for g in got] == [public, private]
    assert got[0].value == MEAN and got[0].final
    assert got[1].value is None and got[1].private is not None
    assert got[1].private.blob_digest == blob and got[1].private.locator == blob_locator(blob)
    assert got[1].to_json()["kind"] == "private" and got[1].program == "he.mean"
    third = req.post_task(MEAN_ID, PARAMS, reward=ETHER, seat_deadline=chain.now() + 100,
                          report_deadline=chain.now() + 1000)  # fmt: skip
    with pytest.raises(ResultNotAvailable, match="status: open"):
        read(req, third)
    # nothing final after the head: a bounded watch returns empty-handed
    assert list(watch(req, timeout=0.5, poll=0.1)) == []


def test_protocol_doc_example_runs(chain: Chain, nodes, tmp_path: Path) -> None:
    """The copyable example in docs/protocol.md compiles and receives the mean."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    section = doc[doc.index("### Example: a price set by the mean of private inputs") :]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "doc_feed.vy").write_text(source)
    feed = chain.deploy_vyper(tmp_path / "doc_feed.vy", chain.deployment.address, MEAN_ID)
    reward = int(chain.deployment.params["min_reward"])
    tx = feed.functions.request(PARAMS).transact(
        {"from": chain.w3.eth.accounts[0], "value": reward}
    )
    chain.w3.eth.wait_for_transaction_receipt(tx)
    form_and_report(chain, nodes, 1)
    chain.advance(CHALLENGE_PERIOD + 1)
    nodes[0].finalize(1)
    assert delivered(chain, 1)[0]["success"] is True
    assert (feed.functions.price().call(), feed.functions.decimals().call()) == (MEAN.value, 18)
