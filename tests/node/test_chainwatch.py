"""The chain follower against a real chain (anvil and the devnet) that reorgs.

Reorgs are made with the standard dev-chain calls ``evm_snapshot``/``evm_revert``/``evm_mine``:
reverting to a snapshot and mining again replaces the blocks above it with new ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from dnode.cli.devcluster import DevCluster
from dnode.contracts.client import ChainClient, connect
from dnode.contracts.devnet import dev_keys
from dnode.contracts.manifest import Deployment
from dnode.node.chainwatch import ChainFollower

pytestmark = pytest.mark.slow


@pytest.fixture(params=["anvil", "devnet"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainClient]:
    cluster = DevCluster(tmp_path, engine=request.param, block_time=None)  # we mine
    with cluster.running():
        w3 = connect(cluster.rpc_url)
        acct = Account.from_key(dev_keys(4)[3])
        yield ChainClient(w3, Deployment.load(cluster.manifest), acct)


def rpc(c: ChainClient, method: str, *params: Any) -> Any:
    resp = c.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in resp, resp
    return resp["result"]


def mine(c: ChainClient, n: int) -> None:
    for _ in range(n):
        rpc(c, "evm_mine")


def post(c: ChainClient, label: str, reward: int = 10**15) -> tuple[int, str]:
    now = c.block_timestamp()
    task_id = c.post_task(
        keccak(text="mpc.mean"),
        keccak(text=label),
        seat_deadline=now + 600,
        report_deadline=now + 1200,
        reward=reward,
    )
    assert c.last_tx is not None
    return task_id, c.last_tx.tx_hash


def posted(events: list[Any]) -> list[tuple[int, str]]:
    return [(e.args["task_id"], e.tx_hash) for e in events if e.name == "TaskPosted"]


def test_orphaned_events_are_never_delivered(client: ChainClient) -> None:
    c = client
    f = ChainFollower(c, c.latest_block() + 1, confirmations=2)
    assert f.poll().events == []

    # shallow reorg: a task posted and reorged out before it had 2 confirmations
    snap = rpc(c, "evm_snapshot")
    orphan = post(c, "orphan")
    mine(c, 1)
    assert posted(f.poll().events) == []  # 1 confirmation only: not acted on
    assert rpc(c, "evm_revert", snap) is True
    reposted = post(c, "reposted", reward=2 * 10**15)
    assert reposted[0] == orphan[0] and reposted[1] != orphan[1]  # same id, other task
    mine(c, 2)
    b = f.poll()
    assert posted(b.events) == [reposted] and b.reorg is None and b.orphaned == []

    # deep reorg: a task delivered with its 2 confirmations, then its block replaced
    snap = rpc(c, "evm_snapshot")
    deep = post(c, "deep")
    mine(c, 2)
    assert posted(f.poll().events) == [deep]
    assert rpc(c, "evm_revert", snap) is True
    mine(c, 4)  # a longer chain without the task
    b = f.poll()
    assert b.reorg is not None and b.reorg.depth >= 1
    assert posted(b.orphaned) == [deep]  # reported once the re-read passed the old height
    assert posted(b.events) == []
    assert f.reorgs == 1 and f.orphaned_total == 1
    again = post(c, "deep-again")
    mine(c, 2)
    assert posted(f.poll().events) == [again]

    mine(c, 3)
    assert f.poll().events == []  # nothing new, nothing twice
