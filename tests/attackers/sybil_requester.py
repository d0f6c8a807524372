"""The requester's attacker process: it holds the keys of a few Sybil accounts that stake but
run no node software, and drives the contract only through ChainClient over JSON-RPC.

    python -m tests.attackers.sybil_requester RPC MANIFEST KEYFILE stake AMOUNT_WEI
    python -m tests.attackers.sybil_requester RPC MANIFEST KEYFILE seat TASK_ID ROUND SIZE

``seat`` forms the round's committee (0: the task's, 1: the re-execution's) from its first
SIZE Sybils alone, each claiming its own first draw, and prints one JSON line:
``{"seated": true}`` or ``{"reverted": "<the contract's one-line reason>"}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eth_account import Account

from dnode.contracts.client import ChainClient, connect
from dnode.contracts.errors import ContractsError
from dnode.contracts.manifest import Deployment
from dnode.oracle.attestation import sign_join
from dnode.scheduler.candidates import lookup_draws


def _clients(rpc: str, manifest: str, keyfile: str) -> list[ChainClient]:
    dep = Deployment.load(Path(manifest))
    w3 = connect(rpc)
    keys = Path(keyfile).read_text().split()
    return [ChainClient(w3, dep, Account.from_key(k)) for k in keys]


def stake(sybils: list[ChainClient], wei: int) -> dict:
    for i, s in enumerate(sybils):
        s.register(f"12D3KooWSybil{i}", 1)  # MPC capability; no process ever serves this peer
        s.stake(wei)
    return {"staked": [s.account.address for s in sybils if s.account]}


def seat(sybils: list[ChainClient], task_id: int, round: int, size: int) -> dict:
    sybils = sybils[:size]
    sender = sybils[0]
    dep = sender.deployment
    members = [s.account.address for s in sybils if s.account]
    sigs: list[bytes | None] = [None] + [
        sign_join(s.account, dep.chain_id, dep.address, task_id, round) for s in sybils[1:]
    ]
    info = sender.task_info(task_id)
    draws = lookup_draws(sender, info, round, members)
    try:
        if round:
            sender.form_rerun_committee(task_id, members, sigs, draws)
        else:
            sender.form_committee(task_id, members, sigs, draws)
    except ContractsError as e:
        return {"reverted": getattr(e, "reason", str(e)), "draws": draws}
    return {"seated": True, "draws": draws}


def main(argv: list[str]) -> int:
    rpc, manifest, keyfile, cmd, *rest = argv
    sybils = _clients(rpc, manifest, keyfile)
    if cmd == "stake":
        out = stake(sybils, int(rest[0]))
    elif cmd == "seat":
        out = seat(sybils, int(rest[0]), int(rest[1]), int(rest[2]))
    else:
        print(f"unknown command {cmd!r}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
