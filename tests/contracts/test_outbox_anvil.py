"""The outbox against anvil with mining off: a real mempool, so a transaction can be stuck and
replaced. (The devnet mines every transaction instantly and has no pending pool.)"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from dnode.cli.devcluster import anvil_path, free_port
from dnode.contracts.client import connect
from dnode.contracts.devnet import dev_keys
from dnode.contracts.outbox import BUMP_DEN, BUMP_NUM, TxOutbox


@pytest.fixture
def anvil() -> Iterator[Web3]:
    port = free_port()
    cmd = [str(anvil_path()), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--accounts", "2", "--no-mining"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):  # up to ~60 s for the process to listen
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.2)
        yield connect(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_for(cond: Any, what: str, tries: int = 600) -> None:
    for _ in range(tries):
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def test_stuck_tx_is_resent_with_the_same_nonce_and_higher_fees(
    anvil: Web3, tmp_path: Path
) -> None:
    keys = dev_keys(2)
    sender, payee = Account.from_key(keys[1]), Account.from_key(keys[0])
    box = TxOutbox(tmp_path / "node.db", stuck_after=0.5, poll_interval=0.05)
    out: dict[str, Any] = {}

    def send() -> None:
        try:
            out["receipt"] = box.send(
                anvil, sender, "transfer", to=payee.address, data=b"", value=1, receipt_timeout=120
            )
        except Exception as e:  # noqa: BLE001 - re-raised in the test thread below
            out["error"] = e

    t = threading.Thread(target=send)
    t.start()
    # nothing is mined: the outbox must re-sign the same nonce at higher fees, twice at least
    _wait_for(lambda: box.rows() and len(box.rows()[0].tx_hashes) >= 3, "two replacements")
    anvil.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    t.join(120)
    assert "error" not in out, out.get("error")
    (row,) = box.rows()
    assert row.state == "mined" and row.nonce == 0
    assert row.mined_hash in row.tx_hashes and row.mined_hash != row.tx_hashes[0]
    first = box._attempts(row.id)[0].fees  # replaced: gone from the pool, kept in the db
    mined = anvil.eth.get_transaction(row.mined_hash)  # type: ignore[arg-type]
    assert mined["nonce"] == 0
    assert mined["maxFeePerGas"] * BUMP_DEN >= first["maxFeePerGas"] * BUMP_NUM
    assert mined["maxPriorityFeePerGas"] * BUMP_DEN >= first["maxPriorityFeePerGas"] * BUMP_NUM
    assert anvil.eth.get_transaction_count(sender.address, "latest") == 1  # one tx, no gap
    assert anvil.eth.get_balance(payee.address) > 0
