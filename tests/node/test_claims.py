"""Issue 12 on the node side, on in-memory fakes (tests/fakes): a candidate the formation
skipped claims its seat back and the member it displaces stops; a member left out of the report
co-signs it (and one whose result differs does not); one unreachable member does not hold the
others' report back; a restart resumes a claimed seat where the chain put it. The policy is
plain functions in node/task/policy.py, tested first. The real processes run in
tests/test_e2e_claims.py."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import trio

from dnode.contracts.client import TaskStatus
from dnode.node.daemon import NodeDaemon
from dnode.node.mpc.sharing import field_modulus
from dnode.node.protocol import PROTO_SHARES, Contribution, loads
from dnode.node.task import worker
from dnode.node.task.cosign import cosign_if_left_out
from dnode.node.task.policy import (
    RoundView,
    claim_plan,
    claim_position,
    cosign_decision,
    round_view,
)
from dnode.node.task.recover import recover
from dnode.node.task.state import task_state
from dnode.oracle.attestation import result_digest, sign_report
from dnode.scheduler.candidates import candidates_for
from dnode.scheduler.programs import TaskParams
from tests.fakes.chain import CHALLENGE, FakeChain
from tests.node.test_task_steps import (  # noqa: F401 - engine is a fixture
    OWNER,
    PARAMS,
    REQUESTER,
    RESULT,
    TASK,
    Cluster,
    announce,
    engine,
    owner_sharing,
)

pytestmark = pytest.mark.usefixtures("engine")  # the fake engine of test_task_steps

A, B, C, D = (f"0x{i:040x}" for i in (0xA, 0xB, 0xC, 0xD))

# ---- policy ---------------------------------------------------------------------------------


def view(until: int = 100) -> RoundView:
    return RoundView((A, B, C), (3, 9, 5), until, frozenset({D.lower()}))


def test_claim_plan_claims_the_worst_seat_only_when_ranked_above_it_in_the_period() -> None:
    plan = claim_plan(view(), "0x" + "ee" * 20, 4, now=50)
    assert plan.ok and plan.seat == 1 and plan.displaced == B  # draw 9 is the worst
    assert claim_plan(view(), "0x" + "ee" * 20, 8, now=50).ok
    for me, draw, now, until, why in [
        ("0x" + "ee" * 20, 4, 50, 0, "no claim period"),
        ("0x" + "ee" * 20, 4, 100, 100, "claim period is over"),
        (A.lower(), 1, 50, 100, "already seated"),
        (D.lower(), 1, 50, 100, "may not sit"),
        ("0x" + "ee" * 20, None, 50, 100, "not drawn above"),
        ("0x" + "ee" * 20, 9, 50, 100, "ranks below"),
        ("0x" + "ee" * 20, 12, 50, 100, "ranks below"),
    ]:
        plan = claim_plan(view(until), me, draw, now)
        assert not plan.ok and plan.final and why in plan.reason, (draw, plan)


def test_the_rerun_committee_is_claimed_by_the_same_rule_without_its_excluded() -> None:
    """Round 1: the re-execution committee's draws and claim period come from the dispute
    record; the first committee, the requester and the disputer may not claim."""
    dispute = SimpleNamespace(
        committee=[A, B, C], seat_draws=lambda: [2, 7, 4], claims_until=100, disputer=D
    )
    task = SimpleNamespace(committee=(A,), requester=B, dispute=dispute, draws=(), claims_until=0)
    v = round_view(task, 1)
    assert v is not None and v.draws == (2, 7, 4) and v.claims_until == 100
    assert v.excluded == {A.lower(), B.lower(), D.lower()}
    assert claim_plan(v, "0x" + "ee" * 20, 5, now=50).seat == 1
    assert "may not sit" in claim_plan(v, D.lower(), 1, now=50).reason
    assert round_view(task, 0) == RoundView((A,), (), 0, frozenset({B.lower()}))
    assert round_view(SimpleNamespace(dispute=None), 1) is None


def test_claims_are_staggered_best_ranked_first() -> None:
    ranked = [1, 2, 3, 4, 5, 7, 9, 11]  # draws of eligible candidates; members hold 3, 9, 5
    assert claim_position(1, view(), ranked) == 0
    assert claim_position(4, view(), ranked) == 2  # 1 and 2 claim first (3 is seated)
    assert claim_position(7, view(), ranked) == 3


def reported(**kw: Any) -> Any:
    base = dict(
        status=TaskStatus.REPORTED,
        committee=(A, B, C),
        signers_bitmap=0b011,
        declined_bitmap=0,
        result_digest=result_digest(b"r"),
        reported_at=1000,
    )
    return SimpleNamespace(**{**base, **kw})


def test_cosign_only_for_a_left_out_member_that_signed_the_reported_result() -> None:
    me, digest = C.lower(), result_digest(b"r")
    assert cosign_decision(reported(), me, digest, 1010, CHALLENGE).ok
    for task, who, ours, now, why in [
        (reported(status=TaskStatus.COMPUTING), me, digest, 1010, "computing"),
        (reported(), D.lower(), digest, 1010, "no seat"),
        (reported(declined_bitmap=0b100), me, digest, 1010, "declined"),
        (reported(signers_bitmap=0b111), me, digest, 1010, "already among"),
        (reported(), me, None, 1010, "not signed"),
        (reported(), me, result_digest(b"other"), 1010, "differs"),
        (reported(), me, digest, 1000 + CHALLENGE, "window is closed"),
    ]:
        d = cosign_decision(task, who, ours, now, CHALLENGE)
        assert not d.ok and why in d.reason, (why, d)
        assert d.mismatch == (why == "differs")


# ---- the steps on fakes ---------------------------------------------------------------------


async def contribute(c: Cluster, values: list[int]) -> None:
    """The owner sends each seat of the committee as the chain has it now its shares."""
    committee = [a.lower() for a in c.ledger.tasks[TASK].committee]
    by_address = {d.address.lower(): d for d in c.nodes}
    modulus = field_modulus(PARAMS.bit_length)
    shares, digests = owner_sharing(values, len(committee), modulus, OWNER.address, c.nodes[0])
    for seat, a in enumerate(committee):
        d = by_address[a]
        msg = Contribution(
            d.chain_id, d.contract, TASK, OWNER.address, seat, modulus, tuple(shares[seat]),
            commitment=digests,
        ).signed(OWNER)  # fmt: skip
        reply = await c.owner.request(d.host.peer_id, PROTO_SHARES, msg.to_bytes())
        assert loads("t", reply)["ok"], loads("t", reply)


def test_a_skipped_candidate_claims_its_seat_and_the_displaced_member_stops(
    tmp_path: Path,
) -> None:
    c = Cluster(tmp_path, n=4)
    c.ledger.post(TASK, REQUESTER.address, PARAMS)
    chain0 = cast(FakeChain, c.nodes[0].chain)
    cands = candidates_for(chain0, c.ledger.tasks[TASK], 0)
    assert cands is not None
    ranked = cands.ranking(want=4).candidates
    by_address = {d.address.lower(): d for d in c.nodes}
    best = by_address[ranked[0].address.lower()]  # the formation skips the best-ranked
    formed = ranked[1:]
    worst = by_address[formed[-1].address.lower()]
    sender = cast(FakeChain, by_address[formed[0].address.lower()].chain)

    async def main() -> None:
        async with trio.open_nursery() as n:
            c.wire(n)
            n.start_soon(c.follow)
            assert (await announce(c))["ok"]
            with trio.fail_after(20):
                for d in c.nodes:
                    await d.rt(TASK).until(d.rt(TASK).knows_params)
            sender.form_committee(
                TASK,
                [x.address for x in formed],
                [None] * 3,
                [x.draw for x in formed],
                skips=1,
                claim_period=6,
            )
            with trio.fail_after(30):
                await best.rt(TASK).until(lambda: best.rt(TASK).seat is not None)
                await worst.rt(TASK).until(lambda: worst.rt(TASK).displaced)
            await contribute(c, [1, 2, 3])
            with trio.fail_after(45):
                for d in c.nodes:
                    if d is not worst:
                        await d.rt(TASK).until(d.rt(TASK).is_reported)
            n.cancel_scope.cancel()

    trio.run(main)
    info = c.ledger.tasks[TASK]
    committee = [a.lower() for a in info.committee]
    assert best.address.lower() in committee and worst.address.lower() not in committee
    assert info.status == TaskStatus.REPORTED and info.result == RESULT.encode()
    claims = {d.address: cast(FakeChain, d.chain).calls.count("claim_seat") for d in c.nodes}
    assert claims == {d.address: int(d is best) for d in c.nodes}
    seat = committee.index(best.address.lower())
    assert best.rt(TASK).seat == seat and best.state.seat(TASK, 0).seat == seat
    assert best.state.signature(TASK) is not None
    # the displaced member forgot the seat: no worker, no signature, no report
    assert worst.rt(TASK).seat is None and task_state(worst.rt(TASK)) == "displaced"
    assert worst.state.seat(TASK, 0).state == "displaced"
    assert worst.state.signature(TASK) is None and worst.state.result(TASK, 0) is None
    # every member computed with the committee left once the claim period ended
    for d in c.nodes:
        if d is not worst:
            assert [a.lower() for a in d.rt(TASK).committee] == committee


def left_out_link(monkeypatch: pytest.MonkeyPatch, slow: NodeDaemon) -> None:
    """Signatures from and to ``slow`` never arrive (a link that hangs, no error)."""
    send = worker.send_signature

    async def hanging(ctx: Any, peer: str, msg: bytes) -> None:
        if ctx is slow or peer == slow.host.peer_id:
            await trio.sleep_forever()
        await send(ctx, peer, msg)

    monkeypatch.setattr(worker, "send_signature", hanging)


def test_a_member_left_out_of_the_report_cosigns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also issue 12's fix 5: one unreachable member no longer holds every other member's
    report back (worker.work waited on every send_signature)."""
    c = Cluster(tmp_path)
    c.ledger.post(TASK, REQUESTER.address, PARAMS)
    slow = c.nodes[2]  # reporter rank 1 for task 1: the rank-0 member reports first
    left_out_link(monkeypatch, slow)

    async def main() -> None:
        async with trio.open_nursery() as n:
            c.wire(n)
            n.start_soon(c.follow)
            assert (await announce(c))["ok"]
            c.form()
            with trio.fail_after(20):
                for d in c.nodes:
                    await d.rt(TASK).until(d.rt(TASK).is_formed)
            await c.contribute([1, 2, 3])
            with trio.fail_after(30):
                while c.ledger.tasks[TASK].signers_bitmap != 0b111:
                    await trio.sleep(0.05)
            n.cancel_scope.cancel()

    trio.run(main)
    calls = {i: cast(FakeChain, d.chain).calls for i, d in enumerate(c.nodes)}
    assert calls[2].count("cosign") == 1 and "report" not in calls[2]
    assert sum(x.count("report") for x in calls.values()) == 1
    assert not any("cosign" in calls[i] for i in (0, 1))
    assert [e.name for e in c.ledger.events].count("CoSigned") == 1


def test_a_member_whose_result_differs_does_not_cosign(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = Cluster(tmp_path)
    c.ledger.post(TASK, REQUESTER.address, PARAMS)
    members = tuple(d.address for d in c.nodes)
    c.ledger.update(TASK, committee=members, status=TaskStatus.COMPUTING)
    d0, d1, d2 = c.nodes
    result = RESULT.encode()
    sigs = [sign_report(d.cfg.account, d.chain_id, d.contract, TASK, result) for d in (d0, d1)]
    cast(FakeChain, d0.chain).report(TASK, result, sigs)
    # d2 signed another result (its engine disagreed): signing protection holds that one
    d2.state.sign_once(
        TASK, 0, b"other", lambda r: sign_report(d2.cfg.account, d2.chain_id, d2.contract, TASK, r)
    )
    d1.state.sign_once(TASK, 0, result, lambda r: sigs[1])
    with caplog.at_level(logging.INFO, "dnode.node"):
        assert not trio.run(cosign_if_left_out, d2, d2.rt(TASK))
        assert not trio.run(cosign_if_left_out, d1, d1.rt(TASK))  # already a signer
    assert "cosign" not in cast(FakeChain, d2.chain).calls
    assert c.ledger.tasks[TASK].signers_bitmap == 0b011
    assert "not co-signing the report: our result" in caplog.text


def test_a_restart_resumes_a_claimed_seat_where_the_chain_put_it(
    tmp_path: Path,
) -> None:
    """The claim is recorded before it is sent, with the seat it expected; an earlier claim
    may have moved the worst seat. A displaced member's record closes."""
    c = Cluster(tmp_path, n=4)
    c.ledger.post(TASK, REQUESTER.address, PARAMS)
    d0, d1, d2, d3 = c.nodes
    c.ledger.update(
        TASK, committee=(d0.address, d3.address, d2.address), status=TaskStatus.COMPUTING
    )
    d3.state.hold_seat(TASK, 0, 2)  # expected seat 2; the claim landed on seat 1
    d3.state.set_seat_state(TASK, 0, "seated", "claiming")
    d1.state.hold_seat(TASK, 0, 1)  # seat 1 was d1's until d3's claim displaced it
    for d in (d1, d3):
        d.state.save_params(TASK, PARAMS.canonical())

    async def main() -> None:
        async with trio.open_nursery() as n:
            c.wire(n)
            await recover(d3)
            await recover(d1)
            n.cancel_scope.cancel()

    trio.run(main)
    assert d3.rt(TASK).seat == 1 and d3.state.seat(TASK, 0).seat == 1
    assert d3.state.seat(TASK, 0).state == "seated"
    assert d1.state.seat(TASK, 0).state == "closed"


def test_a_claim_sent_before_the_params_is_given_up_when_they_rule_the_node_out(
    tmp_path: Path,
) -> None:
    """A requester may withhold the params until the claim period is over, so a skipped node
    claims without them; once they name it a data owner it declines the seat (never
    slashed) instead of computing on its own inputs' shares."""
    c = Cluster(tmp_path, n=4)
    probe = c.ledger.post(TASK, REQUESTER.address, PARAMS)  # the ranking ignores the params
    cands = candidates_for(cast(FakeChain, c.nodes[0].chain), probe, 0)
    assert cands is not None
    ranked = cands.ranking(want=4).candidates
    by_address = {d.address.lower(): d for d in c.nodes}
    best = by_address[ranked[0].address.lower()]
    params = TaskParams(program="mpc.sum", owners=(OWNER.address, best.address), input_timeout=20)
    c.ledger.post(TASK, REQUESTER.address, params)
    formed = ranked[1:]
    sender = cast(FakeChain, by_address[formed[0].address.lower()].chain)

    async def main() -> None:
        async with trio.open_nursery() as n:
            c.wire(n)
            n.start_soon(c.follow)
            sender.form_committee(
                TASK,
                [x.address for x in formed],
                [None] * 3,
                [x.draw for x in formed],
                skips=1,
                claim_period=6,
            )
            with trio.fail_after(30):
                await best.rt(TASK).until(lambda: best.rt(TASK).seat is not None)
            assert best.rt(TASK).params is None  # claimed without knowing them
            assert (await announce(c, params, to=1))["ok"]
            with trio.fail_after(45):
                while not c.ledger.declines:
                    await trio.sleep(0.05)
            n.cancel_scope.cancel()

    trio.run(main)
    assert [(a, "data owner" in why) for _, a, why in c.ledger.declines] == [(best.address, True)]
    assert best.state.seat(TASK, 0).state == "abandoned"
    assert best.state.signature(TASK) is None
