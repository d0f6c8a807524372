"""Two processes sending from one account at once get consecutive nonces.

Regression (chaos runs): concurrent `dnode task post` processes of one requester read the same
pending nonce, and one of them failed with "nonce too low"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from dnode.contracts.devnet import dev_keys, start_in_thread

SENDER = textwrap.dedent(
    """
    import sys
    from eth_account import Account
    from dnode.contracts.client import connect, send_transaction
    w3 = connect(sys.argv[1])
    acct = Account.from_key(sys.argv[2])
    for _ in range(8):
        send_transaction(w3, acct, "transfer", to=sys.argv[3], data=b"", value=1)
    print("ok")
    """
)


def test_concurrent_processes_of_one_sender_do_not_collide() -> None:
    server, url = start_in_thread(accounts=3)
    try:
        key, to = dev_keys(3)[0], "0x" + "11" * 20
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        procs = [
            subprocess.Popen([sys.executable, "-c", SENDER, url, key, to], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]  # fmt: skip
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0 and out.strip() == "ok", err[-800:]
    finally:
        server.shutdown()
