"""Hypothesis state machine over every public action (time travel included), checked against
a Python reference model after every step.

Invariants: contract balance == escrows + stakes + unbonding + credits + dispute bonds +
dataset escrows (exactly, and account by account, the burn account and data owners included);
locked <= stake; no task both paid and refunded; every status change follows an edge
documented in docs/protocol.md; every dataset's privacy budget left matches the model (a
task's cost is charged at posting and released only by settling its refund, once).

Formation is ranked (issue 12): the model predicts, with scheduler.sortition.check_committee
over its own slot table and the task's slot snapshot, how many eligible candidates a
committee skips and whether the time-based skip budget allows it; skipped candidates claim
their seats during the claim period; left-out signers co-sign; reports skip declined
signatures; re-execution signers are paid the reward whichever way they vote; an overturn
slashes nobody (the original seats are released unpaid, the disputer's bond of
max(dispute_bond, reward) comes back); a re-execution without result costs the disputer
min(reward, dispute_bond) less what silent re-execution seats were slashed; slashes never
reach the requester.

Budgets (DNODE_HYPOTHESIS_PROFILE, see dnode_chain.py):
  ci   (default)   6 examples x 25 steps   ~30 s
  soak            30 examples x 40 steps   by hand, ~4 min: pass --timeout 0 (pytest-timeout)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from dnode_chain import (
    CHALLENGE_PERIOD,
    ETHER,
    MIN_STAKE,
    SEAT_COLLATERAL,
    UNBOND_DELAY,
    Chain,
    make_account,
    new_chain,
)
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.errors import TransactionReverted
from dnode.oracle.attestation import sign_join, sign_report
from dnode.scheduler.sortition import (
    MAX_DRAW,
    SEED_LIFETIME,
    SKIP_BLOCKS,
    SlotTable,
    check_committee,
    first_draws,
    rank,
    skip_budget,
)

S = TaskStatus
N_NODES = 9
N_REQUESTERS = 2
N_OWNERS = 2
OTHER_PROGRAM = b"\x08" * 32
M = 3
RERUN = M + 2
PROGRAM = b"\x07" * 32
SLACK = 3  # seconds of uncertainty between "latest block" and the next tx's timestamp
C = SEAT_COLLATERAL
CLAIM = 30  # the machine's chain leaves 30 s for seat claims after a formation that skips
BURN = "0x" + "00" * 20
INITIAL_STAKE = [(1 + i % 3) * ETHER for i in range(N_NODES)]

# the edges of docs/protocol.md ("Task lifecycle")
EDGES = {
    (S.NONE, S.OPEN),
    (S.OPEN, S.COMPUTING),
    (S.OPEN, S.REFUNDED),
    (S.COMPUTING, S.COMPUTING),  # decline
    (S.COMPUTING, S.REPORTED),
    (S.COMPUTING, S.REFUNDED),
    (S.REPORTED, S.FINALIZED),
    (S.REPORTED, S.DISPUTED),
    (S.DISPUTED, S.RECOMPUTING),
    (S.DISPUTED, S.FINALIZED),
    (S.RECOMPUTING, S.RECOMPUTING),  # decline
    (S.RECOMPUTING, S.FINALIZED),
    (S.RECOMPUTING, S.OVERTURNED),
}
ESCROWED = (S.OPEN, S.COMPUTING, S.REPORTED, S.DISPUTED, S.RECOMPUTING)
BONDED = (S.DISPUTED, S.RECOMPUTING)

_base: dict[str, object] = {}


def base_world() -> tuple[Chain, str]:
    """One chain per session with registered nodes; each example reverts to its snapshot."""
    if not _base:
        chain = new_chain(claim_period=CLAIM)
        for i in range(N_NODES):
            acct = make_account(f"sm-node{i}")
            chain.fund(acct)
            chain.client(acct).register(f"12D3KooWsm{i}", 1)
            chain.client(acct).stake(INITIAL_STAKE[i])  # so committees form from step one
        for j in range(N_REQUESTERS):
            chain.fund(make_account(f"sm-req{j}"))
        for k in range(N_OWNERS):
            acct = make_account(f"sm-own{k}")
            chain.fund(acct)
            # one live dataset each from step one, so tasks over datasets start at once
            chain.client(acct).register_dataset(
                schema_digest=b"\x05" * 32,
                rows=10,
                price=(1 + 2 * k) * 10**15,
                expiry=chain.now() + 10**7,
                programs=[PROGRAM] if k == 0 else [OTHER_PROGRAM, PROGRAM],
                budget=2_000_000 // (k + 1),
            )
        _base["chain"] = chain
        _base["snap"] = chain.take_snapshot()
    return _base["chain"], _base["snap"]  # type: ignore[return-value]


@dataclass
class MTask:
    requester: str
    reward: int
    seat_dl: int
    window: int  # compute window: report_dl = formed_at + window
    seed_block: int = 0
    posted_at: int = 0
    snapshot: int = 0
    report_dl: int = 0
    status: S = S.OPEN
    committee: list[str] = field(default_factory=list)
    draws: list[int] = field(default_factory=list)
    skips: int = 0
    claims_until: int = 0
    declined: set[int] = field(default_factory=set)
    signers: set[int] = field(default_factory=set)
    reported_at: int = 0
    result: bytes = b""
    disputer: str = ""
    bond: int = 0  # what the dispute posted: max(dispute_bond, reward)
    d_seat_dl: int = 0
    d_report_dl: int = 0
    d_seed_block: int = 0
    d_snapshot: int = 0
    rerun: list[str] = field(default_factory=list)
    rerun_draws: list[int] = field(default_factory=list)
    rerun_skips: int = 0
    rerun_claims_until: int = 0
    rerun_declined: set[int] = field(default_factory=set)
    consumer: bool = False  # posted with a callback: the result bytes are stored on-chain
    data: list[tuple[int, int, int]] = field(default_factory=list)  # (dataset, cost, price)
    data_settled: bool = False


@dataclass
class MDataset:
    owner: str
    price: int
    expiry: int
    budget: int
    programs: list[bytes]
    spent: int = 0
    retired: bool = False


def when(boundary: int, now: int) -> bool | None:
    """Predict ``ts <= boundary`` for the next tx; None when it could go either way.

    ``now`` (the latest block's time) equal to the boundary is not sure either: the client
    estimates gas against the pending block, and anvil stamps that one with the latest
    block's own time until its clock moves on (seen: after ``evm_mine [T]`` the pending
    block reads ``TIMESTAMP == T``), while the mined tx gets a later one."""
    hi = max(now, int(time.time())) + SLACK
    if hi <= boundary:
        return True
    if now > boundary:
        return False
    return None


def negate(x: bool | None) -> bool | None:
    return None if x is None else not x


def both(x: bool | None, y: bool | None) -> bool | None:
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


class DnodeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain, snap = base_world()
        _base["snap"] = self.chain.revert_to_snapshot(snap)
        self.nodes = [self.chain.client(make_account(f"sm-node{i}")) for i in range(N_NODES)]
        self.reqs = [self.chain.client(make_account(f"sm-req{j}")) for j in range(N_REQUESTERS)]
        self.owners = [self.chain.client(make_account(f"sm-own{k}")) for k in range(N_OWNERS)]
        self.by_addr: dict[str, ChainClient] = {
            c.account.address: c for c in [*self.nodes, *self.reqs, *self.owners]
        }
        self.datasets: dict[int, MDataset] = {}
        for ds in range(1, N_OWNERS + 1):
            info = self.owners[0].dataset_info(ds)
            self.datasets[ds] = MDataset(
                info.owner, info.price, info.expiry, info.budget, list(info.programs)
            )
        self.node_addrs = [n.account.address for n in self.nodes]
        self.stake = dict(zip(self.node_addrs, INITIAL_STAKE, strict=True))
        self.seats = dict.fromkeys(self.node_addrs, 0)
        self.unbonding = dict.fromkeys(self.node_addrs, 0)
        self.unbond_at = dict.fromkeys(self.node_addrs, 0)
        self.credits = dict.fromkeys([*self.by_addr, BURN], 0)
        self.tasks: dict[int, MTask] = {}
        self.slots = SlotTable(C)  # the sortition slots as the contract should hold them
        for a in self.node_addrs:
            self.slots.set_stake(a, self.stake[a], max_append=64)
        self.paid: set[int] = set()
        self.refunded: set[int] = set()
        self.bond = int(self.nodes[0].params()["dispute_bond"])
        self.dispute_period = int(self.nodes[0].params()["dispute_period"])
        self.min_reward = int(self.nodes[0].params()["min_reward"])
        self.min_window = int(self.nodes[0].params()["min_compute_window"])
        dep = self.chain.deployment
        self.chain_id, self.contract = dep.chain_id, dep.address

    # ---------------------------------------------------------------- helpers

    def now(self) -> int:
        return self.chain.now()

    def attempt(self, expected: bool | None, fn, *args, why=lambda: "", **kw) -> bool:
        """Run a tx; if the model is sure of the outcome, insist on it (``why()``: the
        model's inputs, read for the failure message only)."""
        try:
            fn(*args, **kw)
        except TransactionReverted as err:
            assert expected is not True, f"{fn.__name__}: unexpected revert: {err} ({why()})"
            return False
        assert expected is not False, f"{fn.__name__} should have reverted ({why()})"
        return True

    def move(self, task_id: int, to: S) -> None:
        t = self.tasks[task_id]
        assert (t.status, to) in EDGES, f"undocumented edge {t.status.name} -> {to.name}"
        t.status = to

    def active(self, a: str) -> bool:
        return self.stake[a] >= MIN_STAKE and self.stake[a] - self.seats[a] * C >= C

    def pay_signers(
        self, members: list[str], signers: set[int], declined: set[int], amount: int, extra: int
    ) -> None:
        n = len(signers)
        share, extra_share = amount // n, extra // n
        dust = amount + extra - (share + extra_share) * n
        for i, a in enumerate(members):
            if i in signers:
                self.seats[a] -= 1
                self.credits[a] += share + extra_share + dust
                dust = 0
            elif i not in declined:
                self.seats[a] -= 1

    def slash(self, a: str) -> int:
        self.seats[a] -= 1
        self.stake[a] -= C
        return C

    def seed(self, seed_block: int) -> bytes | None:
        """The sortition seed if a tx in the next block can still read it."""
        since = self.chain.w3.eth.block_number + 1 - seed_block
        if since <= 0 or since > SEED_LIFETIME:
            return None
        return bytes(self.chain.w3.eth.get_block(seed_block)["hash"])

    def holder(self, snapshot: int):
        self.slots.stake = dict(self.stake)
        return lambda pos: self.slots.holder(pos) if pos < snapshot else None

    def round_view(self, t: MTask, round: int):
        """(seed block, snapshot, seats, excluded, budget start) of a round."""
        if round:
            excluded = {*t.committee, t.requester, t.disputer}
            start = t.d_seat_dl - self.dispute_period // 4
            return t.d_seed_block, t.d_snapshot, RERUN, excluded, start
        return t.seed_block, t.snapshot, M, {t.requester}, t.posted_at

    def ranked(self, task_id: int, round: int) -> list[str]:
        """The model's best-ranked eligible candidates of a round (may be fewer than seats)."""
        t = self.tasks[task_id]
        seed_block, snapshot, seats, excluded, _ = self.round_view(t, round)
        seed = self.seed(seed_block)
        if seed is None or snapshot == 0:
            return []
        r = rank(
            seed, task_id, round, snapshot, self.holder(snapshot),
            lambda a: None if a not in excluded and self.active(a) else "no", 512, seats + 2,
        )  # fmt: skip
        return r.addresses()

    def formation(
        self, task_id: int, round: int, members: list[str]
    ) -> tuple[bool | None, list[int]]:
        """Whether forming ``members`` in the next block is valid (None: depends on the exact
        timestamp), and the draws the client will claim for them."""
        t = self.tasks[task_id]
        seed_block, snapshot, seats, excluded, start = self.round_view(t, round)
        seed = self.seed(seed_block)
        if seed is None or snapshot == 0:
            return False, []
        holder = self.holder(snapshot)
        found = first_draws(seed, task_id, round, snapshot, holder, members, MAX_DRAW + 1)
        draws = [found.get(a.lower(), 0) for a in members]
        if len(found) != len(members) or excluded & set(members):
            return False, draws
        if not all(self.active(a) for a in members):
            return False, draws
        chk = check_committee(
            seed, task_id, round, snapshot, holder,
            lambda a: None if self.active(a) else "no", members, draws, excluded,
        )  # fmt: skip
        assert chk.ok, chk.reason
        if chk.skips == 0:
            return True, draws
        if self.chain.w3.eth.block_number + 1 > seed_block + SKIP_BLOCKS:
            return False, draws
        now = self.now()
        lo = skip_budget(seats, now - start)
        hi = skip_budget(seats, max(now, int(time.time())) + SLACK - start)
        if chk.skips <= lo:
            return True, draws
        if chk.skips > hi:
            return False, draws
        return None, draws

    def seed_gone(self, seed_block: int) -> bool:
        return self.chain.w3.eth.block_number + 1 - seed_block > SEED_LIFETIME

    def pick_task(self, data: st.DataObject, *want: S) -> int:
        """A task, three times in four one in a status the rule acts on (when there is one):
        the rest exercise the refusals."""
        # fixed-shape draws: which tasks fit depends on chain time, not on the draws
        k = data.draw(st.integers(0, 1 << 16))
        fit = sorted(i for i, t in self.tasks.items() if t.status in want)
        pool = fit if fit and k % 4 else sorted(self.tasks)
        return pool[(k >> 2) % len(pool)]

    # ---------------------------------------------------------------- registry rules

    @rule(i=st.integers(0, N_NODES - 1), amount=st.integers(1, 3 * ETHER))
    def stake_(self, i: int, amount: int) -> None:
        self.nodes[i].stake(amount)
        a = self.node_addrs[i]
        self.stake[a] += amount
        self.slots.set_stake(a, self.stake[a], max_append=64)

    @rule(i=st.integers(0, N_NODES - 1), frac=st.integers(1, 110))
    def unbond(self, i: int, frac: int) -> None:
        a = self.node_addrs[i]
        free = self.stake[a] - self.seats[a] * C
        amount = max(1, free * frac // 100)
        if self.attempt(amount <= free, self.nodes[i].unbond, amount):
            self.stake[a] -= amount
            self.unbonding[a] += amount
            self.unbond_at[a] = self.nodes[i].node_info().unbond_at

    @precondition(lambda self: any(self.unbonding.values()))
    @rule(i=st.integers(0, N_NODES - 1))
    def withdraw_unbonded(self, i: int) -> None:
        a = self.node_addrs[i]
        if self.unbonding[a] == 0:
            expected: bool | None = False
        else:
            expected = negate(when(self.unbond_at[a] - 1, self.now()))
        if self.attempt(expected, self.nodes[i].withdraw_unbonded):
            self.credits[a] += self.unbonding[a]
            self.unbonding[a] = 0

    @precondition(lambda self: any(self.credits[a] for a in self.by_addr))
    @rule(who=st.integers(0, N_NODES + N_REQUESTERS + N_OWNERS - 1))
    def withdraw(self, who: int) -> None:
        c = [*self.nodes, *self.reqs, *self.owners][who]
        a = c.account.address
        before = self.chain.w3.eth.get_balance(a)
        if self.attempt(self.credits[a] > 0, c.withdraw):
            receipt = self.chain.w3.eth.get_transaction_receipt(c.last_tx.tx_hash)
            fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
            assert self.chain.w3.eth.get_balance(a) == before + self.credits[a] - fee
            self.credits[a] = 0

    # ---------------------------------------------------------------- task rules

    @rule(
        j=st.integers(0, N_REQUESTERS - 1),
        # the deployment floors (min_reward C // 100, compute window 60 s) and one below each
        reward=st.integers(C // 100 - 1, 5 * ETHER),
        seat_window=st.integers(20, 600),
        window=st.integers(59, 1500),
        consumer=st.booleans(),
        # "to a dispute": form the best, report, the requester disputes (random runs reach
        # the re-execution rules far more often than by chaining the rules one by one)
        then=st.sampled_from(["wait", "form the best", "form skipping", "to a dispute"]),
    )
    def post(
        self, j: int, reward: int, seat_window: int, window: int, consumer: bool, then: str
    ) -> None:
        now = max(self.now(), int(time.time()))
        seat_dl = now + SLACK + seat_window
        c = self.reqs[j]
        ok = reward >= self.min_reward and window >= self.min_window
        if not self.attempt(
            ok,
            c.post_task,
            PROGRAM,
            PROGRAM,
            capability=1,
            committee_size=M,
            seat_deadline=seat_dl,
            compute_window=window,
            reward=reward,
            # an EOA as callback: the call succeeds and moves no money, like any consumer
            callback=c.account.address if consumer else None,
            callback_gas=50_000 if consumer else 0,
        ):
            return
        task_id = len(self.tasks) + 1
        seed_block = c.last_tx.block_number + 1
        info = c.task_info(task_id)
        assert info.seed_block == seed_block and info.slot_snapshot == self.slots.slot_count
        self.tasks[task_id] = MTask(
            c.account.address, reward, seat_dl, window, seed_block, info.posted_at,
            info.slot_snapshot,
        )  # fmt: skip
        self.tasks[task_id].consumer = consumer
        assert (S.NONE, S.OPEN) in EDGES
        assert c.task_status(task_id) == S.OPEN
        if then == "form the best":
            self._bind(task_id, 0, list(range(N_NODES)), True, 0)
        elif then == "to a dispute":
            t = self.tasks[task_id]
            if self._bind(task_id, 0, list(range(N_NODES)), True, 0) and not t.skips:
                self._report_with(task_id, list(range(M)), b"A")
                if t.status == S.REPORTED:
                    self._dispute_by(task_id, self.by_addr[t.requester])
        elif then == "form skipping":  # leave out the best-ranked node: it may claim back
            self.chain.mine(1)
            top = self.ranked(task_id, 0)
            idx = [self.node_addrs.index(a) for a in top[1 : M + 1]] if len(top) > M else []
            self._bind(task_id, 0, idx + [i for i in range(N_NODES) if i not in idx], False, 10)

    def _members(self, task_id: int, round: int, idx: list[int], best: bool) -> list[str]:
        n = RERUN if round else M
        if best:
            top = self.ranked(task_id, round)
            if len(top) >= n:
                return top[:n]
        return [self.node_addrs[i] for i in idx[:n]]

    def _bind(self, task_id: int, round: int, idx: list[int], best: bool, wait: int) -> bool:
        """Form a round's committee (the model's best-ranked one, or any nodes): predicted
        with the model's ranking, checked on-chain."""
        t = self.tasks[task_id]
        status, seat_dl, seed_block = (
            (S.DISPUTED, t.d_seat_dl, t.d_seed_block)
            if round
            else (S.OPEN, t.seat_dl, t.seed_block)
        )
        if t.status == status and not self.seed_gone(seed_block):
            self.chain.mine(1)  # the seed block
            if wait:
                self.chain.advance(wait)  # let the skip budget grow
        members = self._members(task_id, round, idx, best)
        expected, _ = (False, []) if t.status != status else self.formation(task_id, round, members)
        if expected is not False:
            expected = when(seat_dl, self.now()) if expected else None
        sigs = [None] + [
            sign_join(self.by_addr[a].account, self.chain_id, self.contract, task_id, round)
            for a in members[1:]
        ]
        send = self.by_addr[members[0]]
        form = send.form_rerun_committee if round else send.form_committee
        if not self.attempt(expected, form, task_id, members, sigs):
            return False
        for a in members:
            self.seats[a] += 1
        info = send.task_info(task_id)
        skips = (info.dispute.skips if info.dispute else 0) if round else info.skips
        event(f"formed round {round} with {'skips' if skips else 'no skip'}")
        if round:
            d = info.dispute
            assert d is not None and d.committee == members
            t.rerun, t.rerun_draws = members, d.seat_draws()
            t.rerun_skips, t.rerun_claims_until = d.skips, d.claims_until
            self.move(task_id, S.RECOMPUTING)
        else:
            t.committee, t.draws = members, list(info.draws)
            t.skips, t.claims_until = info.skips, info.claims_until
            formed_at = self.chain.w3.eth.get_block(send.last_tx.block_number)["timestamp"]
            assert info.report_deadline == formed_at + t.window
            assert t.claims_until == (formed_at + CLAIM if t.skips else 0)
            t.report_dl = info.report_deadline
            self.move(task_id, S.COMPUTING)
        return True

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        idx=st.permutations(range(N_NODES)),
        best=st.booleans(),
        wait=st.sampled_from([0, 10, 30]),
    )
    def form(self, data: st.DataObject, idx: list[int], best: bool, wait: int) -> None:
        task_id = self.pick_task(data, S.OPEN)
        self._bind(task_id, 0, idx, best, wait)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), i=st.integers(0, N_NODES - 1))
    def claim(self, data: st.DataObject, i: int) -> None:
        """A skipped candidate (or anyone) tries to take the worst-ranked seat."""
        task_id = self.pick_task(data, S.COMPUTING, S.RECOMPUTING)
        t = self.tasks[task_id]
        round = 1 if t.status == S.RECOMPUTING else 0
        members = t.rerun if round else t.committee
        a = self.node_addrs[i]
        if i % 3:  # mostly the best-ranked node left out (a skipped candidate)
            out = [x for x in self.ranked(task_id, round) if x not in members]
            a = out[0] if out else a
        draws = t.rerun_draws if round else t.draws
        skips = t.rerun_skips if round else t.skips
        until = t.rerun_claims_until if round else t.claims_until
        declined = t.rerun_declined if round else t.declined
        seed_block, snapshot, _, excluded, _ = self.round_view(t, round)
        seed = self.seed(seed_block)
        draw = 0
        if seed is not None and snapshot:
            found = first_draws(seed, task_id, round, snapshot, self.holder(snapshot), [a], 4096)
            draw = found.get(a.lower(), 0)
            drawn = a.lower() in found
        else:
            drawn = False
        if (
            t.status not in (S.COMPUTING, S.RECOMPUTING)
            or skips == 0
            or not drawn
            or a in members
            or a in excluded
            or draw >= max(draws)
            or not self.active(a)
        ):
            expected: bool | None = False
        else:
            expected = when(until - 1, self.now())  # claims close at `until`
        if not self.attempt(expected, self.by_addr[a].claim_seat, task_id, draw):
            return
        event(f"seat claimed (round {round})")
        worst = max(range(len(draws)), key=lambda k: (draws[k], -k))
        displaced = members[worst]
        if worst in declined:
            declined.discard(worst)
        else:
            self.seats[displaced] -= 1
        self.seats[a] += 1
        members[worst], draws[worst] = a, draw
        if round:
            t.rerun_skips -= 1
        else:
            t.skips -= 1
        self.move(task_id, t.status)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), seat=st.integers(0, RERUN - 1))
    def decline(self, data: st.DataObject, seat: int) -> None:
        task_id = self.pick_task(data, S.COMPUTING, S.RECOMPUTING)
        t = self.tasks[task_id]
        if t.status == S.RECOMPUTING:
            members, declined, dl = t.rerun, t.rerun_declined, t.d_report_dl
        else:
            members, declined, dl = t.committee, t.declined, t.report_dl
        if not members:
            return
        seat %= len(members)
        a = members[seat]
        if t.status not in (S.COMPUTING, S.RECOMPUTING) or seat in declined:
            expected: bool | None = False
        else:
            expected = when(dl, self.now())
        if self.attempt(expected, self.by_addr[a].decline, task_id, "cannot run it"):
            declined.add(seat)
            self.seats[a] -= 1
            self.move(task_id, t.status)

    def _sign(self, task_id: int, members: list[str], picks: list[int], result: bytes):
        chosen = sorted({p % len(members) for p in picks})
        sigs = [
            sign_report(
                self.by_addr[members[k]].account, self.chain_id, self.contract, task_id, result
            )  # fmt: skip
            for k in chosen
        ]
        return chosen, sigs

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        picks=st.lists(st.integers(0, RERUN - 1), min_size=1, max_size=RERUN),
        outsider=st.booleans(),
        result=st.sampled_from([b"A", b"B"]),
    )
    def report(self, data: st.DataObject, picks: list[int], outsider: bool, result: bytes) -> None:
        self._report_with(self.pick_task(data, S.COMPUTING), picks, result, outsider)

    def _report_with(
        self, task_id: int, picks: list[int], result: bytes, outsider: bool = False
    ) -> None:
        t = self.tasks[task_id]
        members = t.committee or self.node_addrs[:M]
        chosen, sigs = self._sign(task_id, members, picks, result)
        if outsider:
            stranger = next(a for a in self.node_addrs if a not in members)
            sigs.append(
                sign_report(
                    self.by_addr[stranger].account, self.chain_id, self.contract, task_id, result
                )  # fmt: skip
            )
        valid = set(chosen) - t.declined  # a declined seat's signature is skipped
        if t.status != S.COMPUTING or outsider or len(valid) < M // 2 + 1:
            expected: bool | None = False
        elif t.skips:  # the claim period must be over, the report deadline not
            now = self.now()
            expected = both(negate(when(t.claims_until - 1, now)), when(t.report_dl, now))
        else:
            expected = when(t.report_dl, self.now())
        if self.attempt(expected, self.nodes[0].report, task_id, result, sigs):
            if set(chosen) & t.declined:
                event("report with a declined signature skipped")
            t.signers = valid
            t.result = result
            t.reported_at = self.nodes[0].task_info(task_id).reported_at
            self.move(task_id, S.REPORTED)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), seat=st.integers(0, M - 1))
    def cosign(self, data: st.DataObject, seat: int) -> None:
        """A signer left out of the report adds its signature during the challenge window."""
        task_id = self.pick_task(data, S.REPORTED)
        t = self.tasks[task_id]
        if not t.committee:
            return
        a = t.committee[seat]
        result = t.result or b"A"
        sig = sign_report(self.by_addr[a].account, self.chain_id, self.contract, task_id, result)
        if t.status != S.REPORTED or seat in t.signers or seat in t.declined:
            expected: bool | None = False
        else:
            expected = when(t.reported_at + CHALLENGE_PERIOD - 1, self.now())
        if self.attempt(expected, self.reqs[0].cosign, task_id, sig):
            t.signers.add(seat)  # paid at finalization like the others
            event("co-signed")

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def finalize(self, data: st.DataObject) -> None:
        task_id = self.pick_task(data, S.REPORTED)
        t = self.tasks[task_id]
        if t.status != S.REPORTED:
            expected: bool | None = False
        else:
            expected = negate(when(t.reported_at + CHALLENGE_PERIOD - 1, self.now()))
        if self.attempt(expected, self.reqs[0].finalize, task_id):
            self.pay_signers(t.committee, t.signers, t.declined, t.reward, 0)
            self.paid.add(task_id)
            self.move(task_id, S.FINALIZED)

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        task_id = self.pick_task(data, S.OPEN, S.COMPUTING)
        t = self.tasks[task_id]
        now = self.now()
        quorum_dead = len(t.declined) > M - (M // 2 + 1)
        if t.status == S.OPEN:
            expected = True if self.seed_gone(t.seed_block) else negate(when(t.seat_dl, now))
        elif t.status == S.COMPUTING:
            expected = True if quorum_dead else negate(when(t.report_dl, now))
        else:
            expected = False

        def why() -> str:  # an RPC: only when the model and the contract disagree
            return (
                f"status {t.status.name}, head {self.chain.w3.eth.block_number}, seed block "
                f"{t.seed_block}, seat deadline {t.seat_dl}, report deadline {t.report_dl}, "
                f"latest block time {now}, wall clock {int(time.time())}"
            )

        if self.attempt(expected, self.reqs[1].cancel, task_id, why=why):
            slashed = 0
            for i, a in enumerate(t.committee):
                if i in t.declined:
                    continue
                if quorum_dead:
                    self.seats[a] -= 1
                else:
                    slashed += self.slash(a)
            self.credits[t.requester] += t.reward  # slashed collateral is burned
            self.credits[BURN] += slashed
            event("cancelled" + (" with slashes burned" if slashed else ""))
            self.refunded.add(task_id)
            self.move(task_id, S.REFUNDED)

    # ---------------------------------------------------------------- data marketplace rules

    @rule(
        k=st.integers(0, N_OWNERS - 1),
        price=st.integers(0, ETHER),
        budget=st.integers(1, 3_000_000),
        ttl=st.sampled_from([-10, 100, 5000]),
        other=st.booleans(),
    )
    def publish(self, k: int, price: int, budget: int, ttl: int, other: bool) -> None:
        c = self.owners[k]
        now = max(self.now(), int(time.time()))
        expiry = now + SLACK + ttl if ttl > 0 else self.now() + ttl
        programs = [OTHER_PROGRAM] if other else [PROGRAM, OTHER_PROGRAM]
        expected = ttl > 0
        try:
            ds = c.register_dataset(
                schema_digest=b"\x05" * 32,
                rows=10,
                price=price,
                expiry=expiry,
                programs=programs,
                budget=budget,
                locator="file:///sample.csv",
            )
        except TransactionReverted as err:
            assert expected is False, f"publish: unexpected revert: {err}"
            return
        assert expected, "publish should have reverted"
        assert ds == len(self.datasets) + 1
        self.datasets[ds] = MDataset(c.account.address, price, expiry, budget, programs)

    @precondition(lambda self: self.datasets)
    @rule(
        data=st.data(),
        k=st.integers(0, N_OWNERS - 1),
        price=st.integers(0, ETHER),
        ttl=st.sampled_from([100, 5000]),
        retire=st.booleans(),
    )
    def change_dataset(
        self, data: st.DataObject, k: int, price: int, ttl: int, retire: bool
    ) -> None:
        """An owner (or another owner: refused) updates or retires a dataset; the budget
        never moves."""
        ds = data.draw(st.integers(1, len(self.datasets)))
        d, c = self.datasets[ds], self.owners[k]
        expected = c.account.address == d.owner and not d.retired
        if retire:
            if self.attempt(expected, c.retire_dataset, ds):
                d.retired = True
            return
        expiry = max(self.now(), int(time.time())) + SLACK + ttl
        if self.attempt(expected, c.update_dataset, ds, price=price, expiry=expiry):
            d.price, d.expiry = price, expiry

    @precondition(lambda self: self.datasets)
    @rule(
        j=st.integers(0, N_REQUESTERS - 1),
        picks=st.lists(st.integers(1, 4), min_size=1, max_size=3),
        costs=st.lists(st.integers(1, 1_500_000), min_size=3, max_size=3),
        reward=st.integers(C // 100 - 1, 2 * ETHER),
        then=st.sampled_from(["wait", "form the best"]),
    )
    def post_over_datasets(
        self, j: int, picks: list[int], costs: list[int], reward: int, then: str
    ) -> None:
        c = self.reqs[j]
        now = self.now()
        costs = costs[: len(picks)]
        expected: bool | None = reward >= self.min_reward and len(set(picks)) == len(picks)
        spent: dict[int, int] = {}
        for ds, cost in zip(picks, costs, strict=True):
            d = self.datasets.get(ds)
            if d is None or d.retired or PROGRAM not in d.programs or d.spent + cost > d.budget:
                expected = False
                continue
            expected = both(expected, when(d.expiry - 1, now))
            spent[ds] = cost
        seat_dl = max(now, int(time.time())) + SLACK + 300
        if not self.attempt(
            expected,
            c.post_data_task,
            PROGRAM,
            PROGRAM,
            datasets=picks,
            costs=costs,
            reward=reward,
            seat_deadline=seat_dl,
            compute_window=self.min_window,
        ):
            return
        task_id = len(self.tasks) + 1
        info = c.task_info(task_id)
        t = MTask(
            c.account.address, reward, seat_dl, self.min_window, info.seed_block,
            info.posted_at, info.slot_snapshot,
        )  # fmt: skip
        t.data = [
            (ds, cost, self.datasets[ds].price) for ds, cost in zip(picks, costs, strict=True)
        ]
        assert [(d.dataset_id, d.cost, d.price) for d in info.datasets] == t.data
        for ds, cost in spent.items():
            self.datasets[ds].spent += cost
        self.tasks[task_id] = t
        event(f"task over {len(picks)} dataset(s)")
        if then == "form the best":
            self._bind(task_id, 0, list(range(N_NODES)), True, 0)

    @precondition(lambda self: any(t.data for t in self.tasks.values()))
    @rule(data=st.data(), who=st.integers(0, N_OWNERS - 1))
    def settle_datasets(self, data: st.DataObject, who: int) -> None:
        with_data = sorted(i for i, t in self.tasks.items() if t.data)
        task_id = with_data[data.draw(st.integers(0, len(with_data) - 1))]
        t = self.tasks[task_id]
        ended = t.status in (S.FINALIZED, S.OVERTURNED, S.REFUNDED)
        expected = ended and not t.data_settled
        if not self.attempt(expected, self.owners[who].settle_datasets, task_id):
            return
        t.data_settled = True
        for ds, cost, price in t.data:
            if t.status == S.REFUNDED:
                self.credits[t.requester] += price
                if not t.committee:  # released only if no committee ever sat (issue 18)
                    self.datasets[ds].spent -= cost
            else:
                self.credits[self.datasets[ds].owner] += price
        event("datasets settled " + ("(refund)" if t.status == S.REFUNDED else "(paid)"))

    # ---------------------------------------------------------------- litigation rules

    @precondition(lambda self: self.tasks)
    @rule(data=st.data(), who=st.integers(-1, N_NODES - 1))
    def dispute(self, data: st.DataObject, who: int) -> None:
        task_id = self.pick_task(data, S.REPORTED)
        t = self.tasks[task_id]
        self._dispute_by(task_id, self.by_addr[t.requester] if who < 0 else self.nodes[who])

    def _dispute_by(self, task_id: int, c: ChainClient) -> None:
        t = self.tasks[task_id]
        a = c.account.address
        allowed = a == t.requester or self.stake.get(a, 0) >= MIN_STAKE
        if t.status != S.REPORTED or not allowed:
            expected: bool | None = False
        else:
            expected = when(t.reported_at + CHALLENGE_PERIOD - 1, self.now())
        if self.attempt(expected, c.dispute, task_id):
            d = c.task_info(task_id).dispute
            assert d is not None
            t.d_seed_block, t.d_snapshot = d.seed_block, d.slot_snapshot
            assert d.seed_block == c.last_tx.block_number + 1
            assert d.slot_snapshot == self.slots.slot_count
            t.disputer, t.d_seat_dl, t.d_report_dl = a, d.seat_deadline, d.report_deadline
            t.bond = max(self.bond, t.reward)
            assert t.d_report_dl - t.d_seat_dl == self.dispute_period - self.dispute_period // 4
            self.move(task_id, S.DISPUTED)
            event("disputed")

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        idx=st.permutations(range(N_NODES)),
        best=st.booleans(),
        wait=st.sampled_from([0, 10, 50]),
    )
    def form_rerun(self, data: st.DataObject, idx: list[int], best: bool, wait: int) -> None:
        task_id = self.pick_task(data, S.DISPUTED)
        self._bind(task_id, 1, idx, best, wait)

    @precondition(lambda self: self.tasks)
    @rule(
        data=st.data(),
        picks=st.lists(st.integers(0, RERUN - 1), min_size=1, max_size=RERUN),
        result=st.sampled_from([b"A", b"B"]),
    )
    def report_rerun(self, data: st.DataObject, picks: list[int], result: bytes) -> None:
        task_id = self.pick_task(data, S.RECOMPUTING)
        t = self.tasks[task_id]
        members = t.rerun or self.node_addrs[:RERUN]
        chosen, sigs = self._sign(task_id, members, picks, result)
        valid = set(chosen) - t.rerun_declined
        if t.status != S.RECOMPUTING or len(valid) < RERUN // 2 + 1:
            expected: bool | None = False
        elif t.rerun_skips:
            now = self.now()
            expected = both(negate(when(t.rerun_claims_until - 1, now)), when(t.d_report_dl, now))
        else:
            expected = when(t.d_report_dl, self.now())
        if not self.attempt(expected, self.nodes[0].report_rerun, task_id, result, sigs):
            return
        # the re-execution signers are paid the reward whichever way they vote
        self.pay_signers(t.rerun, valid, t.rerun_declined, t.reward, 0)
        if result == t.result:
            # upheld: the bond paid the re-execution; the rest of it goes to the original
            # signers on top of the reward
            event("rerun upheld (paid from the bond)")
            self.pay_signers(t.committee, t.signers, t.declined, t.reward, t.bond - t.reward)
            self.paid.add(task_id)
            self.move(task_id, S.FINALIZED)
        else:
            # overturned: the reward paid the re-execution; the original seats are released,
            # unpaid and never slashed (a differing re-run proves nothing against them)
            for i, a in enumerate(t.committee):
                if i not in t.declined:
                    self.seats[a] -= 1
            event("rerun overturned (reward to the rerun, bond back)")
            self.credits[t.disputer] += t.bond
            self.paid.add(task_id)  # the reward paid the re-execution, nothing refunded
            t.result = result  # the result that stands
            self.move(task_id, S.OVERTURNED)
            assert self.nodes[0].result_of(task_id)[2] == result

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def resolve(self, data: st.DataObject) -> None:
        task_id = self.pick_task(data, S.DISPUTED, S.RECOMPUTING)
        t = self.tasks[task_id]
        now = self.now()
        quorum_dead = len(t.rerun_declined) > RERUN - (RERUN // 2 + 1)
        if t.status == S.DISPUTED:
            expected = negate(when(t.d_seat_dl, now))
        elif t.status == S.RECOMPUTING:
            expected = True if quorum_dead else negate(when(t.d_report_dl, now))
        else:
            expected = False
        if not self.attempt(expected, self.reqs[0].resolve_dispute, task_id):
            return
        slashed = 0
        for i, a in enumerate(t.rerun):
            if i in t.rerun_declined:
                continue
            if quorum_dead:
                self.seats[a] -= 1
            else:
                slashed += self.slash(a)
        # the original signers are paid for the delay: the silent seats' collateral, topped up
        # from the bond to min(reward, dispute_bond); the disputer gets the rest of its bond
        fee = min(t.reward, self.bond)
        fee -= min(fee, slashed)
        event("rerun failed, delay fee " + ("from the bond" if fee else "covered by slashes"))
        self.pay_signers(t.committee, t.signers, t.declined, t.reward, slashed + fee)
        self.credits[t.disputer] += t.bond - fee
        self.paid.add(task_id)
        self.move(task_id, S.FINALIZED)

    @rule(seconds=st.sampled_from([1, 30, 200, 700, 2000, UNBOND_DELAY + 5]))
    def time_travel(self, seconds: int) -> None:
        self.chain.advance(seconds)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved(self) -> None:
        escrow = sum(t.reward for t in self.tasks.values() if t.status in ESCROWED)
        bonds = sum(t.bond for t in self.tasks.values() if t.status in BONDED)
        data_escrow = sum(
            p for t in self.tasks.values() if not t.data_settled for _, _, p in t.data
        )
        assert self.nodes[0].data_escrow() == data_escrow
        expected = (
            escrow
            + bonds
            + data_escrow
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
                self.seats[a] * C,
                self.unbonding[a],
            )
            assert n.slots_owned(a) == self.slots.owned.get(a, 0)
        assert self.nodes[0].slot_count() == self.slots.slot_count
        for a, c in self.by_addr.items():
            assert c.credits(a) == self.credits[a]
        assert self.nodes[0].credits(BURN) == self.credits[BURN]
        for task_id, t in self.tasks.items():
            assert self.nodes[0].task_status(task_id) == t.status
        for ds, d in self.datasets.items():
            info = self.nodes[0].dataset_info(ds)
            assert (info.owner, info.price, info.expiry, info.retired) == (
                d.owner, d.price, d.expiry, d.retired,
            )  # fmt: skip
            assert (info.budget, info.spent) == (d.budget, d.spent)

    @invariant()
    def consumer_results_stored(self) -> None:
        """result_of serves the result that stands for consumer tasks, nothing for others."""
        for task_id, t in self.tasks.items():
            status, _, stored = self.nodes[0].stored_result(task_id)
            assert status == t.status
            has_result = t.status in (S.REPORTED, S.DISPUTED, S.RECOMPUTING, S.FINALIZED,
                                      S.OVERTURNED)  # fmt: skip
            assert stored == (t.result if t.consumer and has_result else b"")

    @invariant()
    def never_paid_and_refunded(self) -> None:
        assert not (self.paid & self.refunded)


TestDnodeStateMachine = DnodeMachine.TestCase


# ---------------------------------------------------------------- directed dispute paths

# every way a dispute ends, each driven through the machine's own rules (so the model's
# money flows are checked account by account after every step); random runs reach disputes
# rarely (a handful per soak run)
DISPUTE_ENDINGS = {
    "overturned": [("form_rerun",), ("report_rerun", b"B")],
    "upheld": [("form_rerun",), ("report_rerun", b"A")],
    "never formed": [("time_travel", 700), ("resolve",)],
    "declined": [("form_rerun",), ("decline", 0), ("decline", 1), ("decline", 2), ("resolve",)],
    "silent": [
        ("form_rerun",),
        ("decline", 0),
        ("time_travel", 2000),
        ("time_travel", 700),
        ("resolve",),
    ],  # fmt: skip
}
FINAL = {"overturned": S.OVERTURNED}


@pytest.mark.parametrize(
    ("ending", "reward"),
    [(e, ETHER) for e in DISPUTE_ENDINGS]
    + [(e, C // 4) for e in ("overturned", "upheld", "never formed")],
)
def test_dispute_endings_keep_the_money_invariant(ending: str, reward: int) -> None:
    @settings(max_examples=1, database=None, deadline=None, phases=[Phase.generate])
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        m = DnodeMachine()
        checks = [m.money_is_conserved, m.chain_matches_model, m.consumer_results_stored,
                  m.never_paid_and_refunded]  # fmt: skip

        def step(fn, *args, **kw) -> None:
            fn(*args, **kw)
            for check in checks:
                check()

        step(m.post, 0, reward, 600, 1500, True, "form the best")
        (task_id,) = m.tasks
        t = m.tasks[task_id]
        assert t.status == S.COMPUTING
        step(m.report, data, [0, 1, 2], False, b"A")
        step(m.dispute, data, -1)  # the requester disputes
        assert t.status == S.DISPUTED and t.bond == max(m.bond, reward)
        for name, *args in DISPUTE_ENDINGS[ending]:
            if name == "form_rerun":
                step(m.form_rerun, data, list(range(N_NODES)), True, 0)
                assert t.status == S.RECOMPUTING
            elif name == "report_rerun":
                step(m.report_rerun, data, [0, 1, 2, 3], args[0])
            elif name == "decline":
                step(m.decline, data, args[0])
            elif name == "time_travel":
                step(m.time_travel, args[0])
            else:
                step(m.resolve, data)
        assert t.status == FINAL.get(ending, S.FINALIZED)
        stakes = {a: m.stake[a] for a in t.committee}
        assert stakes == {a: INITIAL_STAKE[m.node_addrs.index(a)] for a in t.committee}

    run()


# ---------------------------------------------------------------- directed data endings

# every way a task over datasets ends, through the machine's own rules (so the owners'
# credits, the requester's refund and each budget are checked after every step)
DATA_ENDINGS = {
    "finalized": [("report", b"A"), ("time_travel", 700), ("finalize",)],
    "refunded": [("time_travel", 2000), ("cancel",)],
    # issue 18: a committee sat (it may have opened outputs), then the task was refunded:
    # the prices come back, the privacy budget stays charged
    "refunded after formation": [("time_travel", 2000), ("cancel",)],
    "overturned": [("report", b"A"), ("dispute",), ("form_rerun",), ("report_rerun", b"B")],
    "upheld": [("report", b"A"), ("dispute",), ("form_rerun",), ("report_rerun", b"A")],
}


@pytest.mark.parametrize(
    "ending",
    [
        # opt-in (-m long): tests/contracts/test_dnode_datasets.py has the same case by default
        pytest.param(e, marks=pytest.mark.long) if e == "refunded after formation" else e
        for e in DATA_ENDINGS
    ],
)
def test_data_endings_keep_the_money_invariant(ending: str) -> None:
    @settings(max_examples=1, database=None, deadline=None, phases=[Phase.generate])
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        m = DnodeMachine()
        checks = [m.money_is_conserved, m.chain_matches_model, m.never_paid_and_refunded]

        def step(fn, *args, **kw) -> None:
            fn(*args, **kw)
            for check in checks:
                check()

        step(m.publish, 1, 10**16, 1_000_000, 5000, False)
        then = "wait" if ending == "refunded" else "form the best"
        refunded = ending.startswith("refunded")
        step(m.post_over_datasets, 0, [1, 2, 3], [300_000, 400_000, 500_000], ETHER, then)
        (task_id,) = m.tasks
        t = m.tasks[task_id]
        assert len(t.data) == 3 and t.status == (S.OPEN if then == "wait" else S.COMPUTING)
        left = {ds: d.budget - d.spent for ds, d in m.datasets.items()}
        step(m.settle_datasets, data, 0)  # too early: refused
        assert not t.data_settled
        for name, *args in DATA_ENDINGS[ending]:
            if name == "report":
                step(m.report, data, [0, 1, 2], False, args[0])
            elif name == "dispute":
                step(m.dispute, data, -1)
            elif name == "form_rerun":
                step(m.form_rerun, data, list(range(N_NODES)), True, 0)
            elif name == "report_rerun":
                step(m.report_rerun, data, [0, 1, 2, 3], args[0])
            elif name == "time_travel":
                step(m.time_travel, args[0])
            else:
                step(getattr(m, name), data)
        assert t.status == (
            S.REFUNDED if refunded else S.OVERTURNED if ending == "overturned" else S.FINALIZED
        )
        step(m.settle_datasets, data, 1)
        assert t.data_settled
        step(m.settle_datasets, data, 0)  # a second settlement is refused
        released = ending == "refunded"  # only a task no committee ever sat on
        for ds, cost, _ in t.data:
            d = m.datasets[ds]
            assert d.budget - d.spent == left[ds] + (cost if released else 0)
        for k in range(N_OWNERS):
            step(m.withdraw, N_NODES + N_REQUESTERS + k)
        step(m.withdraw, 0)

    run()
