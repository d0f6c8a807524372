"""The dnode Python SDK: what the ``dnode`` command is a shell over.

Connect to a deployment, post any program or a SQL query, wait for and decode the attested
result (sync or ``async``; inside Jupyter too), publish datasets, run a data owner's agent
in-process, and read attested results as a dApp backend would::

    import dnode

    client = dnode.connect("http://127.0.0.1:8545", "deployment.json", home="~/req")
    task = client.query(
        "SELECT AVG(age) FROM patients",
        ["patients.json"],
        datasets=[1, 2],
        privacy_cost=0.1,
        bootstrap=[node_addr],
    )
    print(task.result(wait=300).named)

Errors are typed and one line each: :class:`SdkError` and the layers' roots (:data:`ERRORS`).
docs/sdk.md is generated from these docstrings (scripts/gen_sdk_docs.py).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule defining it; loaded on first use, so importing the CLI (which
#: imports :mod:`dnode.cli.sdk.errors`) does not load web3 (``dnode --help`` stays fast)
_WHERE = {
    "Client": "client",
    "connect": "client",
    "programs": "client",
    "wei": "client",
    "FederatedRun": "federated",
    "SdkError": "errors",
    "WaitTimeout": "errors",
    "REFUND_REASONS": "tasks",
    "Result": "tasks",
    "Task": "tasks",
    "timeline": "tasks",
}

__all__ = ["ERRORS", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name == "ERRORS":  # every error the SDK raises on purpose (a bug raises anything else)
        from dnode.cli.sdk.errors import _errors

        return _errors()
    if name == "devnet":  # the local devnet helper (starts processes: loaded on use)
        return importlib.import_module("dnode.cli.sdk.devnet")
    if name in _WHERE:
        return getattr(importlib.import_module(f"dnode.cli.sdk.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'dnode.cli.sdk' has no attribute {name!r}")
