"""The SDK without a chain: its documented examples run (doctest), docs/sdk.md is current,
its errors are typed one-liners, its sync API works inside a running event loop (a Jupyter
cell), ``import dnode`` stays light, and the explorer's app is read-only.

The SDK against a running devnet (posting, waiting, owner agents, the notebook, the browser)
is tests/test_e2e_sdk_explorer.py."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dnode

ROOT = Path(dnode.IMPORT_ROOT)
DOCUMENTED = [
    "dnode.cli.sdk.errors",
    "dnode.cli.sdk.run",
    "dnode.cli.sdk.catalog",
    "dnode.cli.sdk.tasks",
    "dnode.cli.sdk.client",
    "dnode.cli.explorer.charts",
]


@pytest.mark.parametrize("module", DOCUMENTED)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(module)
    got = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert got.attempted > 0, f"{module} has no example"
    assert got.failed == 0, f"{got.failed} example(s) of {module} failed (run it with -v)"


def test_docs_sdk_md_is_current() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        gen = importlib.import_module("gen_sdk_docs")
    finally:
        sys.path.pop(0)
    want = gen.render()
    assert (ROOT / "docs" / "sdk.md").read_text() == want, (
        "docs/sdk.md is stale: run .venv/bin/python scripts/gen_sdk_docs.py"
    )
    for name in ("connect", "Client.post", "Client.query", "Task.wait", "Task.result_async",
                 "OwnerAgentHandle", "SdkError"):  # fmt: skip
        assert f"`{name}" in want, name


def test_errors_are_typed_one_liners() -> None:
    from dnode.cli.sdk import ERRORS, SdkError, wei
    from dnode.cli.sdk.client import Client
    from dnode.cli.sdk.tasks import min_aggregation

    cases = [
        lambda: wei("lots"),
        lambda: Client(None, None),
        lambda: min_aggregation(["0x" + "11" * 20], None, None, False),
        lambda: dnode.connect("http://127.0.0.1:8545", home="/nonexistent", manifest="/no/such"),
    ]
    for case in cases:
        with pytest.raises(ERRORS) as e:
            case()
        assert "\n" not in str(e.value) and str(e.value)
    # the CLI's error is one of them: an SDK caller catches one root
    from dnode.cli.context import CliError

    assert issubclass(CliError, SdkError)


def test_sync_api_inside_a_running_loop() -> None:
    """A notebook cell runs inside an asyncio loop: the sync API must not try to start
    another loop in that thread (trio work goes to a worker thread) nor fail."""
    import trio

    from dnode.cli.sdk.run import loop_running, run_trio, to_thread

    async def trio_work(x: int) -> tuple[int, bool]:
        await trio.sleep(0)
        return x * 2, loop_running()

    async def cell() -> Any:
        assert loop_running()
        direct = run_trio(trio_work, 21)  # sync call from inside the loop
        threaded = await to_thread(run_trio, trio_work, 4)  # the async twin's path
        return direct, threaded

    assert asyncio.run(cell()) == ((42, True), (8, True))
    assert run_trio(trio_work, 1) == (2, True)  # and outside any loop


def test_import_dnode_stays_light() -> None:
    probe = (
        "import sys, json, dnode; c = dnode.connect; "
        "print(json.dumps([m for m in ('web3', 'trio', 'libp2p') if m in sys.modules]))"
    )
    env = dict(os.environ, PYTHONPATH=dnode.IMPORT_ROOT)
    out = subprocess.run([sys.executable, "-c", "import sys, json, dnode; "
                          "print(json.dumps([m for m in ('web3', 'trio', 'libp2p', 'starlette') "
                          "if m in sys.modules]))"], capture_output=True, text=True, env=env,
                         cwd=dnode.IMPORT_ROOT, check=True, timeout=120)  # fmt: skip
    assert json.loads(out.stdout) == []
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         cwd=dnode.IMPORT_ROOT, check=True, timeout=120)  # fmt: skip
    assert "web3" in json.loads(out.stdout)  # dnode.connect loads the SDK on use


class _StubExplorer:
    """The explorer model's read interface, without a chain (routing and methods only)."""

    head = 7

    def overview(self) -> dict[str, Any]:
        return {"head": 7}

    def tasks(self) -> list[dict[str, Any]]:
        return [{"task_id": 1}]

    def task(self, tid: int) -> dict[str, Any] | None:
        return {"task_id": tid} if tid == 1 else None

    def datasets(self) -> list[dict[str, Any]]:
        return []

    def nodes(self) -> list[dict[str, Any]]:
        return []

    def owners(self) -> list[dict[str, Any]]:
        return []


def test_explorer_app_is_read_only() -> None:
    from starlette.testclient import TestClient

    from dnode.cli.explorer.app import make_app

    web = TestClient(make_app(_StubExplorer()))  # type: ignore[arg-type]
    assert "dnode explorer" in web.get("/").text
    assert web.get("/api/tasks").json()["tasks"] == [{"task_id": 1}]
    assert web.get("/api/tasks/2").status_code == 404
    for path in ("/", "/api/tasks", "/api/tasks/1", "/api/datasets", "/api/nodes"):
        for method in ("post", "put", "delete"):
            assert getattr(web, method)(path).status_code == 405, (method, path)
    assert web.get("/static/..%2F..%2Fdata.py").status_code == 404  # no path out of static/
    assert web.get("/static/app.js").status_code == 200


def test_explorer_binds_loopback_by_default() -> None:
    from dnode.cli.explorer import explorer

    host = next(p for p in explorer.params if p.name == "host")
    assert host.default == "127.0.0.1"
