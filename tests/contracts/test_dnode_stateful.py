"""Hypothesis state machine over the public actions, checked against a small reference model.

After every step: contract balance == open escrows + stakes + unbonding + credits (model and
chain agree account by account), locked <= stake, and no task is both paid and refunded.
Budget comes from the settings profile in dnode_chain.py ("ci" by default; set
DNODE_HYPOTHESIS_PROFILE=soak for a long run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dnode_chain import ETHER, SEAT_COLLATERAL, UNBOND_DELAY, Chain, make_account, new_chain
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from contracts.client import ChainClient, TaskStatus
from contracts.errors import TransactionReverted
from oracle.attestation import sign_report

N_NODES = 5
N_REQUESTERS = 2
PROGRAM = b"\x07" * 32
SLACK = 3  # seconds of uncertainty between "latest block" and the next tx's timestamp

_base: dict[str, object] = {}


def base_world() -> tuple[Chain, int]:
    """One chain per session with registered nodes; each example reverts to its snapshot."""
    if not _base:
        chain = new_chain()
        for i in range(N_NODES):
            acct = make_account(f"sm-node{i}")
            chain.fund(acct)
            chain.client(acct).register(f"12D3KooWsm{i}", 1)
        for j in range(N_REQUESTERS):
            chain.fund(make_account(f"sm-req{j}"))
        _base["chain"] = chain
        _base["snap"] = chain.take_snapshot()
    return _base["chain"], _base["snap"]  # type: ignore[return-value]


@dataclass
class MTask:
    requester: str
    m: int
    reward: int
    seat_dl: int
    report_dl: int
    status: TaskStatus = TaskStatus.OPEN
    seats: list[str] = field(default_factory=list)
    reported_at: int = 0
    signers: set[str] = field(default_factory=set)


def when(boundary: int, now: int) -> bool | None:
    """Predict ``ts <= boundary`` for the next tx; None when it could go either way.

    The next block's timestamp lies in [latest, max(latest, wall clock) + SLACK]: eth-tester
    stamps blocks with the wall clock unless time travel moved the chain ahead of it.
    """
    hi = max(now, int(time.time())) + SLACK
    if hi <= boundary:
        return True
    if now > boundary:
        return False
    return None


class DnodeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain, snap = base_world()
        _base["snap"] = self.chain.revert_to_snapshot(snap)
        self.nodes = [self.chain.client(make_account(f"sm-node{i}")) for i in range(N_NODES)]
        self.reqs = [self.chain.client(make_account(f"sm-req{j}")) for j in range(N_REQUESTERS)]
        self.by_addr: dict[str, ChainClient] = {
            c.account.address: c for c in [*self.nodes, *self.reqs]
        }
        self.stake = {n.account.address: 0 for n in self.nodes}
        self.locked = {n.account.address: 0 for n in self.nodes}
        self.unbonding = {n.account.address: 0 for n in self.nodes}
        self.unbond_at = {n.account.address: 0 for n in self.nodes}
        self.credits = dict.fromkeys(self.by_addr, 0)
        self.tasks: dict[int, MTask] = {}
        self.paid: set[int] = set()
        self.refunded: set[int] = set()

    # ---------------------------------------------------------------- helpers

    def now(self) -> int:
        return self.chain.now()

    def attempt(self, expected: bool | None, fn, *args, **kw):
        """Run a tx; if the model is sure of the outcome, insist on it. Returns success."""
        try:
            out = fn(*args, **kw)
        except TransactionReverted as err:
            assert expected is not True, f"unexpected revert: {err}"
            return False, None
        assert expected is not False, f"{fn.__name__} should have reverted"
        return True, out

    def tasks_in(self, *statuses: TaskStatus) -> list[int]:
        return sorted(t for t, m in self.tasks.items() if m.status in statuses)

    # ---------------------------------------------------------------- registry rules

    @rule(i=st.integers(0, N_NODES - 1), amount=st.integers(1, 3 * ETHER))
    def stake_(self, i: int, amount: int) -> None:
        node = self.nodes[i]
        node.stake(amount)
        self.stake[node.account.address] += amount

    @rule(i=st.integers(0, N_NODES - 1), frac=st.integers(1, 110))
    def unbond(self, i: int, frac: int) -> None:
        a = self.nodes[i].account.address
        free = self.stake[a] - self.locked[a]
        amount = max(1, free * frac // 100)
        ok, _ = self.attempt(amount <= free, self.nodes[i].unbond, amount)
        if ok:
            self.stake[a] -= amount
            self.unbonding[a] += amount
            self.unbond_at[a] = self.nodes[i].node_info().unbond_at

    @rule(i=st.integers(0, N_NODES - 1))
    def withdraw_unbonded(self, i: int) -> None:
        a = self.nodes[i].account.address
        if self.unbonding[a] == 0:
            expected: bool | None = False
        else:
            before = when(self.unbond_at[a] - 1, self.now())  # ts <= unbond_at - 1: too early
            expected = None if before is None else not before
        ok, _ = self.attempt(expected, self.nodes[i].withdraw_unbonded)
        if ok:
            self.credits[a] += self.unbonding[a]
            self.unbonding[a] = 0

    @rule(who=st.integers(0, N_NODES + N_REQUESTERS - 1))
    def withdraw(self, who: int) -> None:
        c = [*self.nodes, *self.reqs][who]
        a = c.account.address
        before = self.chain.w3.eth.get_balance(a)
        ok, _ = self.attempt(self.credits[a] > 0, c.withdraw)
        if ok:
            receipt = self.chain.w3.eth.get_transaction_receipt(c.last_tx.tx_hash)
            fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
            assert self.chain.w3.eth.get_balance(a) == before + self.credits[a] - fee
            self.credits[a] = 0

    # ---------------------------------------------------------------- market rules

    @rule(
        j=st.integers(0, N_REQUESTERS - 1),
        m=st.integers(3, 5),
        reward=st.integers(1, 5 * ETHER),
        seat_window=st.integers(20, 600),
        report_window=st.integers(20, 1500),
    )
    def post(self, j: int, m: int, reward: int, seat_window: int, report_window: int) -> None:
        now = max(self.now(), int(time.time()))
        seat_dl = now + SLACK + seat_window
        report_dl = seat_dl + report_window
        c = self.reqs[j]
        task_id = c.post_task(
            PROGRAM,
            PROGRAM,
            capability=1,
            committee_size=m,
            seat_deadline=seat_dl,
            report_deadline=report_dl,
            reward=reward,
        )
        assert task_id == len(self.tasks) + 1
        self.tasks[task_id] = MTask(c.account.address, m, reward, seat_dl, report_dl)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), i=st.integers(0, N_NODES - 1))
    def claim(self, data: st.DataObject, i: int) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.tasks)))
        t = self.tasks[task_id]
        a = self.nodes[i].account.address
        if t.status != TaskStatus.OPEN or a in t.seats:
            expected: bool | None = False
        elif self.stake[a] < ETHER or self.stake[a] - self.locked[a] < SEAT_COLLATERAL:
            expected = False
        else:
            expected = when(t.seat_dl, self.now())
        ok, _ = self.attempt(expected, self.nodes[i].claim_seat, task_id)
        if ok:
            t.seats.append(a)
            self.locked[a] += SEAT_COLLATERAL
            if len(t.seats) == t.m:
                t.status = TaskStatus.COMPUTING
            assert self.nodes[i].seat_index(task_id, a) == len(t.seats) - 1

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        n_signers=st.integers(1, 5),
        outsider=st.booleans(),
        result=st.binary(max_size=80),
    )
    def report(self, data: st.DataObject, n_signers: int, outsider: bool, result: bytes) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.tasks)))
        t = self.tasks[task_id]
        dep = self.chain.deployment
        signers = t.seats[: min(n_signers, len(t.seats))]
        if outsider:
            signers = [*signers, next(a for a in self.stake if a not in t.seats)]
        if not signers:
            signers = [self.nodes[0].account.address]
        sigs = [
            sign_report(self.by_addr[a].account, dep.chain_id, dep.address, task_id, result)
            for a in signers
        ]
        quorum = t.m // 2 + 1
        if t.status != TaskStatus.COMPUTING or outsider or len(signers) < quorum:
            expected: bool | None = False
        elif not set(signers) <= set(t.seats):
            expected = False
        else:
            expected = when(t.report_dl, self.now())
        ok, _ = self.attempt(expected, self.nodes[0].report, task_id, result, sigs)
        if ok:
            t.status = TaskStatus.REPORTED
            t.signers = set(signers)
            t.reported_at = self.nodes[0].task_info(task_id).reported_at
            status, _, stored = self.nodes[0].result_of(task_id)
            assert status == TaskStatus.REPORTED and stored == result

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def finalize(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.tasks)))
        t = self.tasks[task_id]
        period = int(self.chain.deployment.params["challenge_period"])
        if t.status != TaskStatus.REPORTED:
            expected: bool | None = False
        else:
            early = when(t.reported_at + period - 1, self.now())
            expected = None if early is None else not early
        ok, _ = self.attempt(expected, self.reqs[0].finalize, task_id)
        if ok:
            t.status = TaskStatus.FINALIZED
            self.paid.add(task_id)
            ordered = [a for a in t.seats if a in t.signers]
            share = t.reward // len(ordered)
            for k, a in enumerate(ordered):
                self.credits[a] += share + (t.reward - share * len(ordered) if k == 0 else 0)
            for a in t.seats:
                self.locked[a] -= SEAT_COLLATERAL

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.tasks)))
        t = self.tasks[task_id]
        now = self.now()
        if t.status == TaskStatus.OPEN:
            on_time = when(t.seat_dl, now)
        elif t.status == TaskStatus.COMPUTING:
            on_time = when(t.report_dl, now)
        else:
            on_time = True
        expected = None if on_time is None else not on_time
        ok, _ = self.attempt(expected, self.reqs[1].refund, task_id)
        if ok:
            t.status = TaskStatus.REFUNDED
            self.refunded.add(task_id)
            self.credits[t.requester] += t.reward
            for a in t.seats:
                self.locked[a] -= SEAT_COLLATERAL

    @rule(seconds=st.sampled_from([1, 30, 200, 700, 2000, UNBOND_DELAY + 5]))
    def time_travel(self, seconds: int) -> None:
        self.chain.advance(seconds)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved(self) -> None:
        escrow = sum(
            t.reward
            for t in self.tasks.values()
            if t.status in (TaskStatus.OPEN, TaskStatus.COMPUTING, TaskStatus.REPORTED)
        )
        expected = (
            escrow
            + sum(self.stake.values())
            + sum(self.unbonding.values())
            + sum(self.credits.values())
        )
        assert self.nodes[0].balance_of_contract() == expected

    @invariant()
    def chain_matches_model(self) -> None:
        for n in self.nodes:
            a = n.account.address
            info = n.node_info()
            assert info.locked <= info.stake
            assert (info.stake, info.locked, info.unbonding) == (
                self.stake[a],
                self.locked[a],
                self.unbonding[a],
            )
        for a, c in self.by_addr.items():
            assert c.credits(a) == self.credits[a]
        for task_id, t in self.tasks.items():
            assert self.nodes[0].task_info(task_id).status == t.status

    @invariant()
    def never_paid_and_refunded(self) -> None:
        assert not (self.paid & self.refunded)


TestDnodeStateMachine = DnodeMachine.TestCase
