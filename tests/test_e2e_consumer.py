"""A dApp consumes a result: the example PriceFeed contract posts an MPC mean task naming itself
as callback; its operator announces the params, three data owners contribute, three node
processes compute, report and finalize, and the finalizing transaction calls the feed back.

Asserts the feed's price equals the plaintext mean (fixed-point, 18 decimals), the callback
succeeded, the nodes were paid, and ``dnode oracle get|watch`` print the same value.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from dnode.cli.devcluster import DevCluster
from dnode.contracts.client import ChainClient, connect, send_transaction
from dnode.contracts.compile import VYPER_DIR, compile_file
from dnode.contracts.manifest import Deployment
from dnode.oracle.encoding import AggregateResult
from dnode.scheduler.programs import get_program

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "contracts" / "examples" / "price_feed.vy"
INPUTS = {
    "dealer-a": ["101.25", "99.5", "100.75"],
    "dealer-b": ["98.0", "102.5"],
    "dealer-c": ["100.125", "97.875", "103.0", "99.25"],
}
REWARD = 3 * 10**17


class Feed:
    """The operator's view of its deployed PriceFeed (signed locally, sent raw)."""

    def __init__(self, cluster: DevCluster) -> None:
        self.w3 = connect(cluster.rpc_url)
        self.dep = Deployment.load(cluster.manifest)
        self.operator = Account.from_key(cluster.dev_key())
        art = compile_file(EXAMPLE, [VYPER_DIR])
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        ctor = factory.constructor(self.dep.address, get_program("mpc.mean").program_id)
        receipt = send_transaction(
            self.w3, self.operator, "deploy PriceFeed", to=None, data=ctor.data_in_transaction
        )
        self.contract = self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
        self.address = to_checksum_address(receipt["contractAddress"])

    def send(self, fn: str, *args: Any, value: int = 0) -> Any:
        data = self.contract.encode_abi(fn, args=list(args))
        return send_transaction(self.w3, self.operator, fn, to=self.address, data=data, value=value)

    def get(self, name: str, *args: Any) -> Any:
        return getattr(self.contract.functions, name)(*args).call()


def test_dapp_receives_the_mpc_mean_by_callback(tmp_path: Path) -> None:
    run_consumer(DevCluster(tmp_path, challenge_period=4))


@pytest.mark.soak  # opt-in (suite time): the default one runs on the tests' chain (anvil)
def test_dapp_receives_the_mpc_mean_by_callback_on_the_devnet(tmp_path: Path) -> None:
    run_consumer(DevCluster(tmp_path, engine="devnet", challenge_period=4))


def run_consumer(cluster: DevCluster) -> None:
    """The scenario, against whichever chain engine ``cluster`` runs (devnet or anvil)."""
    tmp_path = cluster.workdir
    with cluster.running():
        nodes = cluster.start_nodes([f"node-{i}" for i in range(1, 4)])
        owners = {n: cluster.member(n) for n in INPUTS}
        boot = cluster.bootstrap()[0]
        operator_home = ["--home", str(tmp_path / "operator")]

        feed = Feed(cluster)
        params_file = tmp_path / "feed-params.json"
        out = cluster.dnode(
            None, *operator_home, "task", "params", "--program", "mpc.mean",
            *[a for m in owners.values() for a in ("--owner", m.address)],
            "--out", str(params_file),
        )  # fmt: skip
        digest = bytes.fromhex(out["params_digest"][2:])
        receipt = feed.send("request", digest, 3, 120, 600, value=REWARD)
        (ev,) = feed.contract.events.PriceRequested().process_receipt(receipt, errors=DISCARD)
        task_id = int(ev["args"]["task_id"])
        chain = ChainClient(feed.w3, feed.dep)
        info = chain.task_info(task_id)
        assert info.requester == feed.address and info.callback == feed.address
        ann = cluster.dnode(
            None, *operator_home, "task", "announce", str(task_id),
            "--params", str(params_file), "--bootstrap", boot,
        )  # fmt: skip
        assert ann["announced_to"] >= 1

        files = cluster.write_inputs(INPUTS)
        outs = cluster.contribute_all(task_id, owners, files)
        assert all(len(o["seats"]) == 3 for o in outs.values())

        # the nodes report, wait out the challenge window and finalize; finalize calls back
        deadline = time.monotonic() + 300
        while feed.get("updated_by") != task_id:
            assert time.monotonic() < deadline, f"no callback; task {chain.task_status(task_id)}"
            time.sleep(1)

        values = [Fraction(v) for vs in INPUTS.values() for v in vs]
        expected = AggregateResult.from_fraction(sum(values) / len(values), len(values))
        assert feed.get("price") == expected.value
        assert (feed.get("decimals"), feed.get("samples")) == (18, len(values))
        assert not feed.get("pending", task_id)
        info = chain.task_info(task_id)
        assert info.status.name == "FINALIZED" and info.callback_ok is True
        status, digest_on_chain, stored = chain.stored_result(task_id)
        assert AggregateResult.decode(stored) == expected
        assert digest_on_chain == info.result_digest

        # the committee was paid as for any task
        for n in nodes:
            assert cluster.dnode(n.member, "balance")["credits"] == REWARD // 3

        # off-chain consumers read the same value
        got = cluster.dnode(None, *operator_home, "oracle", "get", str(task_id))
        assert got["values_scaled"] == [expected.value] and got["count"] == len(values)
        assert got["status"] == "finalized" and got["callback_ok"] is True
        assert got["callback"] == feed.address and got["kind"] == "public"
        streamed = cluster.dnode(
            None, *operator_home, "oracle", "watch", "--from-block",
            str(feed.dep.deploy_block), "--count", "1", "--timeout", "60",
        )  # fmt: skip
        assert streamed["task_id"] == task_id and streamed["values_scaled"] == [expected.value]
        for n in nodes:
            assert "Traceback" not in n.log_path.read_text()
