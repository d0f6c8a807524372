"""The owner agent's state machine against in-memory fakes (FakeLedger/FakeChain, FakeNetwork):
decide once, share once per round (stored before anything is sent), re-send the SAME bytes
to a seat until it acknowledges, resume after a restart, refuse bad input and keep running.
Seats are fake nodes that parse and authenticate each contribution (node.protocol) and keep
what they received; the real node side is exercised end to end in tests/test_e2e_owner_agents.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from eth_account import Account

from dnode.contracts.client import TaskStatus
from dnode.node.errors import ProtocolViolation
from dnode.node.mpc.sharing import field_modulus, reconstruct
from dnode.node.owner.agent import OwnerAgent
from dnode.node.owner.config import Dataset, OwnerConfig
from dnode.node.owner.errors import NotPending, UnknownTask
from dnode.node.owner.policy import Policy
from dnode.node.owner.state import OwnerState, open_owner_state
from dnode.node.protocol import PROTO_SHARES, Contribution, OwnerNotice, error, ok
from dnode.node.task.notices import accept_notice
from dnode.scheduler.programs import TaskParams, threshold_for
from tests.fakes.chain import FakeChain, FakeLedger
from tests.fakes.transport import FakeNetwork

OWNER = Account.create()
OTHER = Account.create()
REQUESTER = "0x" + "cd" * 20
TASK = 1


class Seat:
    """A fake seat holder: authenticates contributions, keeps every one it received."""

    def __init__(self, net: FakeNetwork, peer: str) -> None:
        self.host = net.host(peer)
        self.received: list[bytes] = []
        self.started = False
        self.host.set_handler(PROTO_SHARES, self.on_shares)

    async def on_shares(self, peer: str, data: bytes) -> bytes:
        try:
            Contribution.parse(peer, data)
        except ProtocolViolation as e:
            return error(e.detail)
        if self.started:
            return error("the computation has already started")
        self.received.append(data)
        return ok()


class World:
    def __init__(self, tmp: Path, policy: Policy | None = None, rows: str = "1\n2\n3\n") -> None:
        self.tmp = tmp
        self.ledger = FakeLedger()
        self.net = FakeNetwork()
        self.members = [Account.create().address for _ in range(3)]
        self.seats = []
        for i, a in enumerate(self.members):
            self.ledger.register(a, f"seat-{i}")
            self.seats.append(Seat(self.net, f"seat-{i}"))
        self.file = tmp / "sales.csv"
        self.file.write_text(rows)
        self.cfg = OwnerConfig(
            home=tmp,
            datasets=(Dataset("sales", self.file, policy or Policy()),),
            poll_interval=0.05,
            retry_interval=0.05,
            metrics_port=None,
        )
        self.params = TaskParams(program="mpc.mean", owners=(OWNER.address, OTHER.address))
        self.host = self.net.host("agent")

    def agent(self, state: OwnerState | None = None) -> OwnerAgent:
        chain = FakeChain(self.ledger, OWNER.address)
        chain.rerun_seats = lambda task_id: []  # type: ignore[attr-defined]
        st = state or open_owner_state(self.cfg.state_dir)
        a = OwnerAgent(self.cfg, OWNER, chain, self.host, st,
                       check_committee=lambda *a: None)  # fmt: skip
        a.nursery = None
        return a

    def post(self, task_id: int = TASK) -> None:
        self.ledger.post(task_id, REQUESTER, self.params)

    def seat_committee(self, task_id: int = TASK) -> None:
        FakeChain(self.ledger, self.members[0]).form_committee(
            task_id, self.members, [None] * 3, [0, 1, 2]
        )


async def _decide(w: World, a: OwnerAgent, task_id: int = TASK) -> Any:
    a.announced[task_id] = w.params.canonical()
    return await a.consider(task_id)


def _values(w: World, rows: list[bytes]) -> list[int]:
    cs = [Contribution.parse("t", r) for r in rows]
    m = field_modulus(w.params.bit_length)
    by = {c.seat: list(c.shares) for c in cs}
    return reconstruct(by, threshold_for(3), m)


def test_accepts_shares_once_and_delivers_to_every_seat(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.post()

    async def main() -> None:
        a = w.agent()
        d = await _decide(w, a)
        assert d.state == "accepted" and d.dataset == "sales"
        w.seat_committee()
        assert await a.contribute_round(a.state.decision(TASK), 0)
        a.state.close()

    trio.run(main)
    assert [len(s.received) for s in w.seats] == [1, 1, 1]
    cs = [Contribution.parse("t", s.received[0]) for s in w.seats]
    assert len({c.commitment for c in cs}) == 1  # one signed sharing for every seat
    encoded = w.params.encode_table(w.file)
    assert _values(w, [s.received[0] for s in w.seats])[: len(encoded)] == encoded


def test_a_second_sharing_of_a_round_is_never_stored_or_sent(tmp_path: Path) -> None:
    """The attack on exactly-once: a restart that shares afresh would give the seats two
    sharings of one round. The stored one wins; the new one is discarded."""
    st = open_owner_state(tmp_path / "s")
    first = st.record_sharing(TASK, 0, [b"a0", b"a1", b"a2"])
    again = st.record_sharing(TASK, 0, [b"b0", b"b1", b"b2"])
    assert (
        [d.contribution for d in again] == [b"a0", b"a1", b"a2"] == [d.contribution for d in first]
    )
    assert [d.contribution for d in st.record_sharing(TASK, 1, [b"r0"])] == [b"r0"]


def test_a_down_seat_gets_the_same_bytes_until_it_acks_and_a_restart_resumes(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    w.post()
    w.seats[2].host.down = True

    async def first_run() -> None:
        a = w.agent()
        await _decide(w, a)
        w.seat_committee()
        with trio.move_on_after(0.5):  # the agent is killed while seat 2 is down
            await a.contribute_round(a.state.decision(TASK), 0)
        rows = a.state.sharing(TASK, 0)
        assert [r.acked_at is not None for r in rows] == [True, True, False]
        assert rows[2].attempts >= 2 and "cannot reach" in rows[2].last_error
        a.state.close()

    trio.run(first_run)
    stored = [r.contribution for r in OwnerState(w.cfg.state_dir).sharing(TASK, 0)]
    w.seats[2].host.down = False

    async def second_run() -> None:
        a = w.agent()  # same home: the restarted agent
        assert a.state.decision(TASK).state == "accepted"  # not re-decided
        assert await a.contribute_round(a.state.decision(TASK), 0)
        a.state.close()

    trio.run(second_run)
    assert [s.received for s in w.seats] == [[stored[0]], [stored[1]], [stored[2]]]


def test_the_restarted_agent_resends_to_a_seat_that_lost_nothing(tmp_path: Path) -> None:
    """Acked seats are not sent to again; an unacked seat that did store them (its ok was
    lost) gets identical bytes, which a node accepts as the same contribution."""
    w = World(tmp_path)
    w.post()

    async def main() -> None:
        a = w.agent()
        await _decide(w, a)
        w.seat_committee()
        assert await a.contribute_round(a.state.decision(TASK), 0)
        with a.state._txn() as db:  # the ack of seat 1 was lost in the crash
            db.execute("UPDATE sharings SET acked_at=NULL WHERE seat=1")
        assert await a.contribute_round(a.state.decision(TASK), 0)
        a.state.close()

    trio.run(main)
    assert len(w.seats[0].received) == 1 and len(w.seats[2].received) == 1
    assert w.seats[1].received[0] == w.seats[1].received[1]


def test_a_seat_whose_computation_started_is_given_up(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.post()
    w.seats[0].started = True

    async def main() -> None:
        a = w.agent()
        await _decide(w, a)
        w.seat_committee()
        assert not await a.contribute_round(a.state.decision(TASK), 0)
        a.state.close()

    trio.run(main)
    assert len(w.seats[1].received) == 1 and len(w.seats[2].received) == 1


def test_delivery_stops_when_the_round_closes_on_chain(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.post()
    for s in w.seats:
        s.host.down = True

    async def main() -> None:
        a = w.agent()
        await _decide(w, a)
        w.seat_committee()
        with trio.fail_after(10):
            async with trio.open_nursery() as n:
                n.start_soon(a.contribute_round, a.state.decision(TASK), 0)
                await trio.sleep(0.3)
                w.ledger.update(TASK, status=TaskStatus.REFUNDED)
        assert a.state.delivery_counts()["acked"] == 0
        a.state.close()

    trio.run(main)


def test_outside_policy_is_pending_then_approve_contributes(tmp_path: Path) -> None:
    w = World(tmp_path, Policy(programs=("mpc.sum",)))
    w.post()

    async def main() -> None:
        a = w.agent()
        d = await _decide(w, a)
        assert d.state == "pending" and "program mpc.mean is not allowed" in d.reason
        w.seat_committee()
        await a.advance(a.state.decision(TASK))  # pending: nothing is shared
        assert a.state.sharing(TASK, 0) == []
        cli_view = OwnerState(w.cfg.state_dir)  # what `dnode owner approve` opens
        cli_view.approve(TASK)
        with pytest.raises(NotPending):
            cli_view.reject(TASK, "too late")
        with pytest.raises(UnknownTask):
            cli_view.approve(99)
        assert await a.contribute_round(a.state.decision(TASK), 0)
        a.state.close()

    trio.run(main)
    assert all(len(s.received) == 1 for s in w.seats)


def test_an_unreadable_file_refuses_that_task_with_a_reason(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.post()

    async def main() -> None:
        a = w.agent()
        await _decide(w, a)
        w.file.write_text("1\nnot-a-number\n")  # broken after the decision
        w.seat_committee()
        assert not await a.contribute_round(a.state.decision(TASK), 0)
        d = a.state.decision(TASK)
        assert d.state == "refused" and "row 2" in d.reason
        # the agent keeps serving: the next task is decided as usual
        w.file.write_text("4\n")
        w.post(2)
        assert (await _decide(w, a, 2)).state == "accepted"
        a.state.close()

    trio.run(main)
    assert all(s.received == [] for s in w.seats)


def test_a_task_without_this_owner_is_ignored(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.params = TaskParams(program="mpc.mean", owners=(OTHER.address,))
    w.post()

    async def main() -> None:
        a = w.agent()
        assert await _decide(w, a) is None
        assert a.state.decision(TASK) is None and TASK in a.not_mine
        a.state.close()

    trio.run(main)


def test_rate_limit_counts_tasks_already_contributed(tmp_path: Path) -> None:
    w = World(tmp_path, Policy(rate_limit=1))
    w.post(1)
    w.post(2)

    async def main() -> None:
        a = w.agent()
        assert (await _decide(w, a, 1)).state == "accepted"
        d2 = await _decide(w, a, 2)
        assert d2.state == "pending" and "rate limit" in d2.reason
        a.state.close()

    trio.run(main)


# ---- owner notices on the node side -----------------------------------------------------


def _node(params: TaskParams) -> Any:
    rt = SimpleNamespace(params=params)
    ledger = FakeLedger()
    return SimpleNamespace(
        chain_id=ledger.deployment.chain_id,
        contract=ledger.deployment.address,
        known=lambda task_id, round=0: rt if task_id == TASK else None,
        owner_notices={},
    )


def _notice(ctx: Any, who: Any, state: str, reason: str, seq: int) -> OwnerNotice:
    return OwnerNotice(ctx.chain_id, ctx.contract, TASK, who.address, state, reason,
                       seq).signed(who)  # fmt: skip


def test_nodes_keep_the_newest_signed_notice_of_each_owner() -> None:
    ctx = _node(TaskParams(program="mpc.mean", owners=(OWNER.address, OTHER.address)))
    assert accept_notice(ctx, "p", _notice(ctx, OWNER, "pending", "program", 10))
    assert accept_notice(ctx, "p", _notice(ctx, OWNER, "rejected", "not now", 20))
    # a replayed older notice does not bring "pending" back
    assert not accept_notice(ctx, "p", _notice(ctx, OWNER, "pending", "program", 10))
    assert ctx.owner_notices[TASK][OWNER.address.lower()].reason == "not now"


def test_a_forged_or_foreign_notice_is_refused() -> None:
    """The attack: anyone claims an owner refused (to make the requester give up), or a
    stranger floods a task with notices."""
    ctx = _node(TaskParams(program="mpc.mean", owners=(OWNER.address, OTHER.address)))
    mallory = Account.create()
    forged = OwnerNotice(ctx.chain_id, ctx.contract, TASK, OWNER.address, "rejected",
                         "owner refuses", 5).signed(mallory)  # fmt: skip
    with pytest.raises(ProtocolViolation, match="not signed by its owner"):
        OwnerNotice.parse("p", forged.to_bytes())
    stranger = _notice(ctx, mallory, "rejected", "spam", 5)
    with pytest.raises(ProtocolViolation, match="not a data owner"):
        accept_notice(ctx, "p", OwnerNotice.parse("p", stranger.to_bytes()))
    assert ctx.owner_notices == {}


def test_a_dispute_rerun_gets_a_fresh_sharing_for_its_seats(tmp_path: Path) -> None:
    """Round 1 (re-execution committee, m + 2 seats) reaches the agent the same way: its own
    sharing, stored once, while round 0's stays as it was."""
    w = World(tmp_path)
    extra = [Account.create().address for _ in range(5)]
    rerun_seats = []
    for i, addr in enumerate(extra):
        w.ledger.register(addr, f"rerun-{i}")
        rerun_seats.append(Seat(w.net, f"rerun-{i}"))
    w.post()

    async def main() -> None:
        a = w.agent()
        a.chain.rerun_seats = lambda task_id: list(extra)
        await _decide(w, a)
        w.seat_committee()
        assert await a.contribute_round(a.state.decision(TASK), 0)
        round0 = [r.contribution for r in a.state.sharing(TASK, 0)]
        w.ledger.update(TASK, status=TaskStatus.RECOMPUTING)
        async with trio.open_nursery() as n:
            a.nursery = n
            await a.advance(a.state.decision(TASK))  # dispatches round 1 only
            assert (TASK, 1) in a.delivering and (TASK, 0) not in a.delivering
        assert [r.contribution for r in a.state.sharing(TASK, 0)] == round0
        rows = a.state.sharing(TASK, 1)
        assert len(rows) == 5 and all(r.acked_at for r in rows)
        a.state.close()

    trio.run(main)
    cs = [Contribution.parse("t", s.received[0]) for s in rerun_seats]
    assert {c.round for c in cs} == {1} and len({c.commitment for c in cs}) == 1
    assert all(len(s.received) == 1 for s in rerun_seats)


def test_malformed_params_are_skipped_and_the_agent_keeps_serving(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.post()

    async def main() -> None:
        a = w.agent()
        a.candidates[TASK] = 0.0
        a.announced[TASK] = b'{"v": 2, "program": "mpc.mean", "owners": "junk"}'
        await a.reconcile()  # junk on gossip and no peer knows them: retried later
        assert a.state.decision(TASK) is None and TASK in a.candidates
        a.announced[TASK] = b"\xff not json"
        await a.reconcile()
        assert a.state.decision(TASK) is None
        assert (await _decide(w, a)).state == "accepted"  # the real params arrive
        a.state.close()

    trio.run(main)


def test_an_unexpected_error_in_a_delivery_is_logged_and_the_round_retried(tmp_path: Path) -> None:
    """A bug or an untyped library error inside one round's delivery must not stop the agent
    (on the old code it escaped the agent's nursery: every other task's deliveries died with
    it and the task waited for inputs until its deadline)."""
    w = World(tmp_path)
    w.post()
    calls: list[int] = []

    def flaky_check(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("an untyped error from a library")

    async def main() -> None:
        a = w.agent()
        a.check_committee = flaky_check
        d = await _decide(w, a)
        w.seat_committee()
        async with trio.open_nursery() as nursery:
            a.nursery = nursery
            await a.advance(d)  # the first round attempt fails unexpectedly
            with trio.fail_after(5):
                while (TASK, 0) in a.delivering:
                    await trio.sleep(0.01)
            await a.advance(a.state.decision(TASK))  # the next pass tries the round again
            with trio.fail_after(5):
                while (TASK, 0) in a.delivering:
                    await trio.sleep(0.01)
        a.state.close()

    trio.run(main)
    assert len(calls) == 2
    assert [len(s.received) for s in w.seats] == [1, 1, 1]


def test_the_sharing_is_ready_before_the_committee_forms_and_sent_only_after_its_check(
    tmp_path: Path,
) -> None:
    """Round 0's sharing is stored while the task is still open (so the shares leave the
    moment the committee forms, not after encoding the dataset), and nothing is sent before
    the formed committee passed the ranked check."""
    w = World(tmp_path)
    w.post()
    checks: list[int] = []

    async def main() -> None:
        a = w.agent()
        a.check_committee = lambda *args: checks.append(1)
        d = await _decide(w, a)
        async with trio.open_nursery() as nursery:
            a.nursery = nursery
            await a.advance(d)  # open: the sharing is prepared in the background
        stored = a.state.sharing(TASK, 0)
        assert len(stored) == 3 and not checks
        assert all(s.received == [] for s in w.seats)  # nothing sent to anyone
        w.seat_committee()
        assert await a.contribute_round(a.state.decision(TASK), 0)
        assert checks == [1]
        assert [s.received for s in w.seats] == [[r.contribution] for r in stored]
        a.state.close()

    trio.run(main)


def test_a_prepared_sharing_never_reaches_a_committee_that_fails_the_check(
    tmp_path: Path,
) -> None:
    from dnode.scheduler.errors import CommitteeNotRanked

    w = World(tmp_path)
    w.post()

    def bad(*args: Any) -> None:
        raise CommitteeNotRanked(TASK, 0, "a member is not drawn")

    async def main() -> None:
        a = w.agent()
        a.check_committee = bad
        d = await _decide(w, a)
        async with trio.open_nursery() as nursery:
            a.nursery = nursery
            await a.advance(d)
        assert len(a.state.sharing(TASK, 0)) == 3
        w.seat_committee()
        assert not await a.contribute_round(a.state.decision(TASK), 0)
        assert a.state.decision(TASK).state == "refused"
        a.state.close()

    trio.run(main)
    assert all(s.received == [] for s in w.seats)
