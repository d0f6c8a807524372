"""How often a node and an owner agent read the chain: at the configured interval when idle,
every FAST_POLL seconds while a task waits on the chain (a seed block, a committee's
formation), because each chain round trip of a task costs one poll interval of latency.
Run on trio's mock clock (virtual time), against the in-memory fakes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import trio
import trio.testing
from eth_account import Account

from dnode.contracts.client import ChainClient
from dnode.node.chainwatch import Batch
from dnode.node.config import NodeConfig
from dnode.node.daemon import NodeDaemon
from dnode.node.mpc.executor import Executor
from dnode.node.owner.agent import FAST_POLL, PARAMS_RETRY, params_retry
from dnode.node.task import context
from tests.fakes.chain import FakeChain, FakeLedger
from tests.fakes.transport import FakeNetwork
from tests.node.test_owner_agent import TASK, World, _decide


class CountingFollower:
    def __init__(self) -> None:
        self.at: list[float] = []

    def poll(self) -> Batch:
        self.at.append(trio.current_time())
        return Batch(head=1, confirmed=1)


def _daemon(tmp: Path) -> tuple[NodeDaemon, CountingFollower]:
    acct = Account.create()
    ledger = FakeLedger()
    ledger.register(acct.address, "peer0")
    cfg = NodeConfig(home=tmp, account=acct, poll_interval=0.5)
    chain = cast(ChainClient, FakeChain(ledger, acct.address))
    d = NodeDaemon(cfg, chain, FakeNetwork().host("peer0"), cast(Executor, SimpleNamespace()))
    follower = CountingFollower()
    d.follower = follower  # type: ignore[assignment]

    async def call(fn: Any, *args: Any) -> Any:  # no worker threads under the mock clock
        return fn(*args)

    d.call = call  # type: ignore[method-assign]
    return d, follower


def test_a_node_polls_fast_only_while_a_step_waits_on_the_chain(tmp_path: Path) -> None:
    d, follower = _daemon(tmp_path)
    counts: dict[str, int] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(d._watch_chain)
            await trio.sleep(2.05)
            counts["idle"] = len(follower.at)
            await trio.sleep(0.2)  # mid-way through a 0.5 s sleep
            before = len(follower.at)
            with d.waiting_on_chain():
                started = trio.current_time()
                await trio.sleep(0.001)
                # the sleeping poll loop is woken: the next poll does not wait out its 0.5 s
                assert len(follower.at) == before + 1
                assert follower.at[-1] - started < 0.01
                await trio.sleep(2.0)
                counts["waiting"] = len(follower.at) - before
            after = len(follower.at)
            await trio.sleep(2.0)
            counts["idle again"] = len(follower.at) - after
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert counts["idle"] == 5  # t = 0, 0.5, 1.0, 1.5, 2.0
    assert counts["waiting"] >= 2.0 / context.FAST_POLL  # every 0.1 s
    assert counts["idle again"] <= 5
    assert d.chain_poll_interval() == 0.5


def test_nested_waits_keep_the_fast_polls_until_the_last_one_ends(tmp_path: Path) -> None:
    d, _ = _daemon(tmp_path)
    with d.waiting_on_chain():
        with d.waiting_on_chain():
            assert d.chain_poll_interval() == context.FAST_POLL
        assert d.chain_poll_interval() == context.FAST_POLL
    assert d.chain_poll_interval() == 0.5
    d.cfg.poll_interval = 0.05  # an operator's shorter interval is never lengthened
    with d.waiting_on_chain():
        assert d.chain_poll_interval() == 0.05


def test_params_are_asked_for_again_soon_then_less_often() -> None:
    assert [params_retry(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert max(params_retry(n) for n in range(50)) == PARAMS_RETRY


def test_an_agent_polls_fast_while_a_task_it_serves_waits_for_its_committee(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    w.cfg = dataclasses.replace(w.cfg, poll_interval=1.0)
    w.post()

    async def main() -> None:
        a = w.agent()
        assert a.chain_poll_interval() == 1.0
        d = await _decide(w, a)
        async with trio.open_nursery() as nursery:
            a.nursery = nursery
            await a.advance(d)  # open: our shares wait for the committee
            assert a.chain_poll_interval() == FAST_POLL
            assert a.poll_wake.is_set()  # the sleeping poll loop is woken
            w.seat_committee()
            await a.advance(a.state.decision(TASK))  # formed: delivering, not waiting
            assert a.chain_poll_interval() == 1.0
            nursery.cancel_scope.cancel()
        a.state.close()

    trio.run(main)


def test_an_agent_asks_for_a_new_candidates_params_at_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cfg = dataclasses.replace(w.cfg, poll_interval=1.0)
    a = w.agent()
    assert a._next_pass() == 1.0
    a.candidates[TASK] = 0.0  # seen posted, never tried
    assert a._next_pass() <= 0.05
    a.state.close()
