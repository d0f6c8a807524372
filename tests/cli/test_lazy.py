"""`dnode --help` loads no command module: the heavy libraries stay out until a command runs.

Checked in a fresh interpreter (sys.modules after `--help`), and against the eager CLI: every
command in the table resolves to the command its module defines, under the same name, with the
same summary, and the lazy listing prints byte for byte what the loaded commands print.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import click
import pytest

import dnode
from dnode.cli import main as cli_main

HEAVY = ("web3", "eth_account", "libp2p", "mpyc", "tenseal", "trio", "numpy", "rich")

PROBE = """
import json, sys
from dnode.cli.main import main
try:
    main({argv!r})
except SystemExit:
    pass
sys.stdout.flush()
print("\\x00" + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def _run_fresh(argv: list[str]) -> tuple[str, list[str]]:
    env = dict(os.environ, PYTHONPATH=dnode.IMPORT_ROOT, COLUMNS="80")
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=set(HEAVY))],
        capture_output=True,
        text=True,
        env=env,
        cwd=dnode.IMPORT_ROOT,
        check=True,
        timeout=120,
    ).stdout
    text, _, loaded = out.rpartition("\x00")
    return text, json.loads(loaded)


def test_help_imports_no_heavy_library() -> None:
    text, loaded = _run_fresh(["--help"])
    assert "Commands:" in text
    assert loaded == [], f"`dnode --help` imported {loaded}"


def test_a_command_loads_its_module_on_use() -> None:
    # the probe sees imports (it is not blind): the task commands' module needs trio and web3
    text, loaded = _run_fresh(["task", "--help"])
    assert "Usage: dnode task" in text
    assert "trio" in loaded and "web3" in loaded


def _all_command_modules() -> dict[str, click.Command]:
    import dnode.cli as pkg

    found: dict[str, click.Command] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in ("main", "__main__"):  # the table itself; `python -m` runs the CLI
            continue
        mod = importlib.import_module(f"dnode.cli.{info.name}")
        for cmd in getattr(mod, "COMMANDS", []):
            assert cmd.name not in found, f"two commands named {cmd.name}"
            found[str(cmd.name)] = cmd
    return found


def test_table_lists_every_command_and_each_resolves() -> None:
    defined = _all_command_modules()
    assert set(cli_main.COMMANDS) == set(defined)
    ctx = click.Context(cli_main.cli)
    for name, (module, attr, summary) in cli_main.COMMANDS.items():
        cmd = cli_main.cli.get_command(ctx, name)
        assert cmd is defined[name], name
        assert cmd.name == name
        assert getattr(importlib.import_module(module), attr) is cmd
        for limit in range(20, 200, 7):
            assert cli_main._short_help(summary, limit) == cmd.get_short_help_str(limit), (
                f"summary of {name!r} differs from its docstring: update COMMANDS in cli/main.py"
            )


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_lazy_listing_prints_what_the_loaded_commands_print(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    lazy, _ = _run_fresh(argv)
    ctx = click.Context(cli_main.cli)
    for name in cli_main.COMMANDS:  # load them all: the listing then asks the commands
        cli_main.cli.get_command(ctx, name)
    assert set(cli_main.cli.commands) >= set(cli_main.COMMANDS)
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        cli_main.main(argv)  # help is not an error: no SystemExit, or SystemExit(0)
    except SystemExit as e:
        assert e.code == 0
    finally:
        if old is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = old
    assert lazy == capsys.readouterr().out


def test_unknown_command_is_still_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main.main(["nosuchcommand"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No such command 'nosuchcommand'.") and err.count("\n") == 1
