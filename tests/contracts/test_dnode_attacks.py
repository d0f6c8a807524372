"""Attacks against the compiled bytecode: re-entrancy on every payout path, reverting
receivers, and acting on records of other tasks. (Signature attacks: test_dnode_reverts.)"""

from __future__ import annotations

import pytest
from dnode_chain import (
    ATTACKERS,
    CHALLENGE_PERIOD,
    ETHER,
    SEAT_COLLATERAL,
    UNBOND_DELAY,
    Chain,
    by_rank,
)
from test_dnode_lifecycle import joins, post, setup_nodes, sign_all

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.compile import compile_contracts
from dnode.contracts.errors import TransactionReverted


class Attacker:
    """A contract account that drives dnode with encoded calls and re-enters on payouts."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.contract = chain.deploy_vyper(ATTACKERS / "reenter_any.vy", chain.deployment.address)
        self.address = self.contract.address
        self.dnode = chain.client(None).contract
        self.sender = chain.w3.eth.accounts[0]
        chain.w3.eth.send_transaction({"from": self.sender, "to": self.address, "value": 0})

    def data(self, fn: str, *args) -> bytes:
        return bytes.fromhex(self.dnode.encode_abi(fn, args=list(args))[2:])

    def act(self, fn: str, *args, value: int = 0) -> None:
        tx = self.contract.functions.act(self.data(fn, *args), value).transact(
            {"from": self.sender, "value": value}
        )
        receipt = self.chain.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1

    def arm(self, calls: list[bytes], reject: bool = False) -> None:
        tx = self.contract.functions.arm(calls, reject).transact({"from": self.sender})
        self.chain.w3.eth.wait_for_transaction_receipt(tx)

    def stats(self) -> tuple[int, int]:
        f = self.contract.functions
        return f.attempts().call(), f.succeeded().call()


def everything_reentry(att: Attacker, rec_abi, task_id: int) -> list[bytes]:
    """Every state-changing entry point, with plausible arguments."""
    now = att.chain.now()
    return [
        att.data("withdraw"),
        att.data("withdraw_unbonded"),
        att.data("unbond", 1),
        att.data("cancel", task_id, rec_abi),
        att.data("finalize", task_id, rec_abi),
        att.data("post_task", b"\x01" * 32, b"\x02" * 32, 1, 3, now + 100, 200),
        att.data("stake"),
        att.data("register", "12D3KooWattacker2", 1),
    ]


@pytest.fixture
def world(chain: Chain, funded):
    return setup_nodes(chain, funded, 6), funded("requester")


def _payout_and_check(chain: Chain, att: Attacker, expected: int, calls: list[bytes]) -> None:
    dnode = chain.client(None)
    assert dnode.credits(att.address) == expected
    total = dnode.balance_of_contract()
    att.arm(calls)
    before = chain.w3.eth.get_balance(att.address)
    att.act("withdraw")
    attempts, succeeded = att.stats()
    assert attempts == len(calls) and succeeded == 0  # every re-entry was refused
    assert chain.w3.eth.get_balance(att.address) == before + expected  # paid exactly once
    assert dnode.balance_of_contract() == total - expected
    assert dnode.credits(att.address) == 0


def test_reentrant_requester_refund(chain: Chain, world) -> None:
    nodes, _ = world
    att = Attacker(chain)
    now = chain.now()
    att.act("post_task", b"\x01" * 32, b"\x02" * 32, 1, 3, now + 100, 500, value=ETHER)
    chain.open_window()
    task_id = 1
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:3], task_id)]
    nodes[0].form_committee(task_id, [n.account.address for n in nodes[:3]], sigs)
    chain.advance(501)
    rec = nodes[0].task_record(task_id)
    att.act("cancel", task_id, rec.as_abi())  # slashes the 3 silent seats (burned)
    expected = ETHER
    rec_after = nodes[0].task_record(task_id)
    _payout_and_check(chain, att, expected, everything_reentry(att, rec_after.as_abi(), task_id))


def test_reentrant_node_unbonded_stake_and_dispute_proceeds(chain: Chain, world) -> None:
    nodes, requester = world
    att = Attacker(chain)
    att.act("register", "12D3KooWattacker", 1)
    att.act("stake", value=2 * ETHER)
    extra = []
    for i in range(2):  # staked before the dispute: in its slot snapshot
        c = _funder(chain)(f"x{i}")
        c.register(f"12D3KooWextra{i}", 1)
        c.stake(2 * ETHER)
        extra.append(c)
    # task with a wrong result, disputed by the attacker (a staked node)
    task_id = post(chain, requester)
    nodes = by_rank(requester, nodes, task_id)
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:3], task_id)]
    nodes[0].form_committee(task_id, [n.account.address for n in nodes[:3]], sigs)
    nodes[0].report(task_id, b"bad", sign_all(chain, nodes[:3], task_id, b"bad"))
    rec = nodes[0].task_record(task_id)
    att.act("dispute", task_id, rec.as_abi(), value=requester.dispute_bond_for(task_id))
    rerun = [*nodes[3:6], *extra]
    chain.open_window()
    rsigs: list[bytes | None] = [None, *joins(chain, rerun[1:], task_id, 1)]
    rerun[0].form_rerun_committee(task_id, [n.account.address for n in rerun], rsigs)
    rerun[0].report_rerun(task_id, b"good", sign_all(chain, rerun[:3], task_id, b"good"))
    assert requester.task_status(task_id) == TaskStatus.OVERTURNED
    expected = requester.dispute_bond_for(task_id)  # the bond back (nobody slashed)
    calls = everything_reentry(att, rec.as_abi(), task_id)
    _payout_and_check(chain, att, expected, calls)
    # unbonded stake
    att.act("unbond", ETHER)
    chain.advance(UNBOND_DELAY + 1)
    att.act("withdraw_unbonded")
    att.arm([])
    _payout_and_check_again(chain, att, ETHER, calls)


def _payout_and_check_again(chain: Chain, att: Attacker, expected: int, calls) -> None:
    a0, s0 = att.stats()
    dnode = chain.client(None)
    att.arm(calls)
    before = chain.w3.eth.get_balance(att.address)
    att.act("withdraw")
    a1, s1 = att.stats()
    assert a1 - a0 == len(calls) and s1 == s0 == 0
    assert chain.w3.eth.get_balance(att.address) == before + expected
    assert dnode.credits(att.address) == 0


def _funder(chain: Chain):
    from dnode_chain import make_account

    def make(label: str) -> ChainClient:
        acct = make_account(f"attack-{label}")
        chain.fund(acct)
        return chain.client(acct)

    return make


def test_reverting_receiver_blocks_nobody(chain: Chain, world) -> None:
    nodes, _ = world
    att = Attacker(chain)
    now = chain.now()
    att.act("post_task", b"\x01" * 32, b"\x02" * 32, 1, 3, now + 100, 500, value=ETHER)
    chain.open_window()
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:3], 1)]
    nodes[0].form_committee(1, [n.account.address for n in nodes[:3]], sigs)
    nodes[0].report(1, b"ok", sign_all(chain, nodes[:3], 1, b"ok"))
    att.arm([], reject=True)
    chain.advance(CHALLENGE_PERIOD + 1)
    nodes[1].finalize(1)  # no push payment: a rejecting requester cannot block settlement
    for n in nodes[:3]:
        n.withdraw()  # and everybody else is paid
    # the rejecting account only hurts itself: its own withdraw reverts, credits kept
    now = chain.now()
    att.act("post_task", b"\x01" * 32, b"\x02" * 32, 1, 3, now + 100, 500, value=ETHER)
    chain.advance(101)
    att.act("cancel", 2, nodes[0].task_record(2).as_abi())
    with pytest.raises(Exception, match="registry: transfer failed"):
        att.act("withdraw")
    assert chain.client(None).credits(att.address) == ETHER


def test_cannot_slash_or_pay_an_unrelated_node(chain: Chain, world) -> None:
    nodes, requester = world
    task_id = post(chain, requester)
    sigs: list[bytes | None] = [None, *joins(chain, nodes[1:3], task_id)]
    nodes[0].form_committee(task_id, [n.account.address for n in nodes[:3]], sigs)
    chain.advance(1001)
    rec = requester.task_record(task_id)
    forged = rec.as_abi()
    forged = (*forged[:5], [nodes[5].account.address, *forged[5][1:]], *forged[6:])
    stake = nodes[5].node_info().stake
    with pytest.raises(TransactionReverted, match="market: bad task record"):
        requester._transact("cancel", "cancel", task_id, forged)
    # a record of another task cannot be used either
    other = post(chain, requester)
    with pytest.raises(TransactionReverted, match="market: bad task record"):
        requester._transact("cancel", "cancel", other, rec.as_abi())
    requester.cancel(task_id)
    assert nodes[5].node_info().stake == stake
    assert [n.node_info().stake for n in nodes[:3]] == [2 * ETHER - SEAT_COLLATERAL] * 3


@pytest.mark.parametrize("name", ["dnode", "dnode_court", "dnode_data"])
def test_initcode_fits_eip3860(name: str) -> None:
    code = bytes.fromhex(compile_contracts()[name]["bytecode"][2:])
    assert len(code) <= 49152


def test_deployed_runtime_fits_eip170(chain: Chain) -> None:
    main = chain.deployment.address
    contract = chain.w3.eth.contract(address=main, abi=chain.deployment.abi)
    court, data = contract.functions.court().call(), contract.functions.data().call()
    for address in (main, court, data):
        code = chain.w3.eth.get_code(address)
        assert len(code) <= 24576, f"runtime code is {len(code)} bytes (EIP-170 limit 24576)"


def test_court_shares_dnode_storage_and_lock_layout() -> None:
    """The extensions run by DELEGATECALL in dnode's storage: any layout drift would corrupt it."""
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    from dnode.contracts.compile import VYPER_DIR

    bundle = FilesystemInputBundle([VYPER_DIR])

    def layout(name: str) -> dict:
        out = compile_from_file_input(
            bundle.load_file(f"{name}.vy"), input_bundle=bundle, output_formats=["layout"]
        )["layout"]
        return {k: out.get(k) for k in ("storage_layout", "transient_storage_layout")}

    main, court, data = layout("dnode"), layout("dnode_court"), layout("dnode_data")
    assert main["storage_layout"] and main["transient_storage_layout"]
    assert "datasets" in main["storage_layout"]
    assert main == court == data


def test_court_called_directly_moves_nothing(chain: Chain, world) -> None:
    """The extension's own storage is empty: a direct call finds no task to act on."""
    nodes, requester = world
    task_id = post(chain, requester)
    main = chain.w3.eth.contract(address=chain.deployment.address, abi=chain.deployment.abi)
    court = chain.w3.eth.contract(address=main.functions.court().call(), abi=chain.deployment.abi)
    rec = requester.task_record(task_id)
    with pytest.raises(Exception, match="market: unknown task"):
        court.functions.dispute(task_id, rec.as_abi()).call(
            {"from": requester.account.address, "value": 1}
        )
