"""Test helpers: the embedded devnet served over HTTP JSON-RPC, with a fresh deployment.

Tests reach the chain exactly as the node and CLI do (web3 HTTPProvider), so what passes
here also exercises the devnet's RPC surface.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from web3 import Web3

from dnode.contracts.client import ChainClient, connect
from dnode.contracts.compile import VYPER_DIR, compile_file
from dnode.contracts.deploy import deploy
from dnode.contracts.devnet import DevnetServer, start_in_thread
from dnode.contracts.manifest import Deployment
from dnode.scheduler.candidates import lookup_draws
from dnode.scheduler.sortition import SKIP_DELAY, SKIP_STEP

ETHER = 10**18
MIN_STAKE = ETHER
SEAT_COLLATERAL = ETHER // 10
UNBOND_DELAY = 3600
CHALLENGE_PERIOD = 600
FUNDING = 100 * ETHER
ATTACKERS = Path(__file__).parent / "attackers"
FULL_BUDGET_M = 3  # open_window() waits until a formation may skip this many candidates

settings.register_profile(
    "ci",
    # each stateful step is ~1 tx + ~30 RPC reads on py-evm: 6 x 25 takes ~30 s
    max_examples=6,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("DNODE_HYPOTHESIS_PROFILE", "ci"))


def make_account(label: str) -> LocalAccount:
    """Deterministic throwaway key, so failures reproduce."""
    return Account.from_key(keccak(text=f"dnode-test/{label}"))


@dataclass
class Chain:
    """Handle on one devnet (served on a loopback port) with a deployed dnode contract."""

    server: DevnetServer | AnvilServer
    w3: Web3
    deployment: Deployment
    deployer: LocalAccount

    def fund(self, account: LocalAccount, wei: int = FUNDING) -> None:
        tx = self.w3.eth.send_transaction(
            {"from": self.w3.eth.accounts[0], "to": account.address, "value": wei}
        )
        self.w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.05)  # a ticking chain

    def client(self, account: LocalAccount | None) -> ChainClient:
        client = ChainClient(self.w3, self.deployment, account)
        client.draw_lookup = lookup_draws  # tests may omit the sortition draws
        return client

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        resp = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp["result"]

    def travel_to(self, timestamp: int) -> None:
        """Mine an empty block at ``timestamp`` (as eth-tester's time_travel does), so calls
        and gas estimates at "latest" already see the new time."""
        self.rpc("evm_mine", [timestamp])

    def take_snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert_to_snapshot(self, snap: str) -> str:
        """Revert (snapshots are single-use, as in ganache/hardhat); returns a fresh one."""
        assert self.rpc("evm_revert", [snap]) is True
        return self.take_snapshot()

    def mine(self, blocks: int) -> None:
        """Mine ``blocks`` empty blocks (each one second after its parent)."""
        self.rpc("anvil_mine", [hex(blocks)])

    def open_window(self, skips: int = FULL_BUDGET_M) -> None:
        """Mine the seed block of a just-posted task and let time pass until a formation may
        skip ``skips`` eligible candidates: tests that pick their committee by hand (rather
        than the best-ranked one) call this first. Test chains deploy with claim_period 0,
        so such hand-picked committees report at once (tests of claims use a chain with a
        claim period)."""
        self.mine(1)
        if skips > 0:
            self.advance(SKIP_DELAY + SKIP_STEP * (skips - 1))

    def advance(self, seconds: int) -> None:
        self.travel_to(self.now() + seconds)

    def deploy_vyper(self, path: Path, *args: Any, value: int = 0) -> Any:
        """Compile (with contracts/vyper on the search path, for the dnode interfaces) and
        deploy from the devnet's first dev account."""
        art = compile_file(path, [VYPER_DIR])
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(*args).transact({"from": self.w3.eth.accounts[0]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def by_rank(
    requester: ChainClient, nodes: list[ChainClient], task_id: int, round: int = 0
) -> list[ChainClient]:
    """``nodes`` in the sortition's rank order for the task's committee (``round`` 1: its
    re-execution committee); nodes not ranked (ineligible, excluded) come last."""
    from dnode.scheduler.candidates import candidates_for

    cands = candidates_for(requester, requester.task_info(task_id), round)
    assert cands is not None
    order = [c.address.lower() for c in cands.ranking().candidates]
    rank = {a: i for i, a in enumerate(order)}
    return sorted(nodes, key=lambda n: rank.get(n.account.address.lower(), len(order)))


#: the contract tests' chain: "anvil" (default: the same JSON-RPC, several times faster than
#: py-evm for these transaction- and eth_call-heavy tests) or "devnet" (the embedded devnet in
#: process). The devnet's own behaviour keeps its tests (test_devnet*.py, test_rpc.py, the
#: chain-watch and devnet end-to-end runs); test_dnode_lifecycle.py runs on both.
CONTRACT_CHAIN = os.environ.get("DNODE_CONTRACT_CHAIN", "anvil")


class AnvilServer:
    """An anvil process on a free loopback port (automine: one block per transaction)."""

    def __init__(self) -> None:
        from dnode.cli.devcluster import anvil_path, free_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(anvil_path()), "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--accounts", "2", "--balance", "1000000", "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        self.shutdown()
        raise RuntimeError("anvil did not listen within 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shutdown(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def new_chain(engine: str | None = None, **params: int) -> Chain:
    """A fresh chain (``engine``: "anvil" or "devnet", default CONTRACT_CHAIN) with dnode
    deployed by a funded deployer."""
    server: DevnetServer | AnvilServer
    if (engine or CONTRACT_CHAIN) == "anvil":
        server = AnvilServer()
        url = server.url
    else:
        server, url = start_in_thread(port=0)
    _servers.append(server)
    # as nodes and the CLI connect (contracts.client.connect): eth_chainId answered once, not
    # before every call and estimate (half of the contract tests' round trips otherwise)
    w3 = connect(url, timeout=60)
    deployer = make_account("deployer")
    funding = {"from": w3.eth.accounts[0], "to": deployer.address, "value": FUNDING}
    # mined before the deploy reads the balance (seen once under load: "balance 0 wei")
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(funding), timeout=60)
    kwargs = {
        "min_stake": MIN_STAKE,
        "seat_collateral": SEAT_COLLATERAL,
        "unbond_delay": UNBOND_DELAY,
        "challenge_period": CHALLENGE_PERIOD,
        "claim_period": 0,
        **params,
    }
    dep = deploy(w3, deployer, **kwargs)
    return Chain(server, w3, dep, deployer)


_servers: list[DevnetServer | AnvilServer] = []
atexit.register(lambda: shutdown_all())  # no anvil process outlives the test session


def shutdown_all() -> None:
    while _servers:
        _servers.pop().shutdown()
