"""A dApp written with ethers.js (npm, tests/js) listens to every dnode event with
``contract.on("*")`` against ``dnode chain``: it must be told about each event the contract
emitted, in order, however many blocks are mined between two of its polls."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dnode_chain import CHALLENGE_PERIOD, ETHER, MIN_STAKE, SEAT_COLLATERAL, Chain, make_account
from test_dnode_lifecycle import form, post, setup_nodes, sign_all

from dnode.cli.devcluster import free_port
from dnode.contracts.client import connect
from dnode.contracts.deploy import deploy

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "tests" / "js"

pytestmark = pytest.mark.timeout(180)


def _hex(h: str) -> str:
    h = h.lower()
    return h if h.startswith("0x") else "0x" + h


def wait_rpc(chain: subprocess.Popen[bytes], w3: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert chain.poll() is None, "dnode chain exited"
        try:
            if w3.eth.block_number >= 0:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.2)
    raise AssertionError("dnode chain did not answer within 60 s")


def test_ethers_contract_on_receives_every_dnode_event(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node.js is needed (scripts/test.sh installs the JS test clients)"
    assert (JS / "node_modules" / "ethers").is_dir(), "run scripts/install_js.sh"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "chain.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnode.cli", "chain", "--port", str(port), "--block-time", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    watcher: subprocess.Popen[str] | None = None
    try:
        w3 = connect(url, timeout=60)
        wait_rpc(proc, w3)
        deployer = make_account("ethers-deployer")
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction(
                {"from": w3.eth.accounts[0], "to": deployer.address, "value": 100 * ETHER}
            )
        )
        dep = deploy(
            w3,
            deployer,
            min_stake=MIN_STAKE,
            seat_collateral=SEAT_COLLATERAL,
            unbond_delay=3600,
            challenge_period=CHALLENGE_PERIOD,
            claim_period=0,
        )
        chain = Chain(None, w3, dep, deployer)  # type: ignore[arg-type]
        abi = tmp_path / "dnode.abi.json"
        abi.write_text(json.dumps(dep.abi))
        watcher = subprocess.Popen(
            [node, str(JS / "watch_events.mjs"), url, dep.address, str(abi)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=JS,
        )
        lines: queue.Queue[dict[str, Any]] = queue.Queue()
        out = watcher.stdout
        assert out is not None
        threading.Thread(
            target=lambda: [lines.put(json.loads(x)) for x in out], daemon=True
        ).start()
        ready = lines.get(timeout=60)
        assert ready.get("ready"), ready
        start = w3.eth.block_number + 1

        def funded(label: str) -> Any:
            acct = make_account(f"ethers-{label}")
            chain.fund(acct)
            return chain.client(acct)

        # a whole lifecycle, transactions mined back to back (several blocks per poll)
        nodes = setup_nodes(chain, funded, 3)
        requester = funded("requester")
        task_id = post(chain, requester, 3, ETHER)
        form(chain, nodes, task_id)
        result = b"mean=42;count=3"
        nodes[0].report(task_id, result, sign_all(chain, nodes, task_id, result)[:2])
        chain.advance(CHALLENGE_PERIOD + 1)
        requester.finalize(task_id)
        nodes[1].withdraw()

        want = [(e.name, _hex(e.tx_hash)) for e in requester.events(start)]
        assert len(want) >= 10 and "TaskFinalized" in {n for n, _ in want}
        got: list[tuple[str, str]] = []
        deadline = time.monotonic() + 60
        while len(got) < len(want) and time.monotonic() < deadline:
            try:
                ev = lines.get(timeout=1)
            except queue.Empty:
                continue
            if ev.get("block", 0) >= start:
                got.append((ev["name"], _hex(ev["tx"])))
        assert got == want
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(10)
        proc.terminate()
        proc.wait(15)
        log.close()
