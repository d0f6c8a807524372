"""Operator commands: ``dnode init`` (default config file) and ``dnode status``."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from dnode.cli import config
from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.units import fmt_eth


@click.command("init")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write it [default: HOME/config.toml].",
)
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@pass_ctx
def init(c: Ctx, config_path: Path | None, force: bool) -> None:
    """Write a commented default config for `dnode start`.

    \b
    Examples:
      dnode --home ~/n1 init
      dnode init --config node.toml --force
    """
    path = config_path or c.home / "config.toml"
    if path.exists() and not force:
        raise CliError(f"{path} exists; use --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config.template())
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}") from None
    c.emit({"config": str(path)}, f"wrote {path}")


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(home: Path, timeout: float = 5.0) -> dict[str, Any]:
    """The node's live /status if it answers, else its last state/node.json (marked stale)."""
    path = home / "state" / "node.json"
    try:
        saved = json.loads(path.read_text())
    except OSError:
        raise CliError(
            f"no node status at {path} (has `dnode start` run with this home?)"
        ) from None
    except ValueError:
        raise CliError(f"{path} is not valid JSON") from None
    url = saved.get("metrics")
    if isinstance(url, str) and _alive(saved.get("pid")):
        try:
            with urllib.request.urlopen(url + "/status", timeout=timeout) as resp:
                live: dict[str, Any] = json.loads(resp.read())
                live["running"] = True
                return live
        except (OSError, ValueError):
            pass
    saved["running"] = _alive(saved.get("pid"))
    saved["stale"] = True
    return saved


@click.command("status")
@pass_ctx
def status(c: Ctx) -> None:
    """Summarise the node running from HOME (its metrics endpoint, else state/node.json).

    \b
    Examples:
      dnode --home ~/n1 status
      dnode --json --home ~/n1 status
    """
    st = read_status(c.home)
    if c.as_json:
        c.emit(st)
        return
    lines = [
        f"node      {st.get('address')}  ({'running' if st.get('running') else 'NOT running'}"
        + (f", status from {_ago(st.get('updated_at'))}" if st.get("stale") else "")
        + ")",
        f"peer id   {st.get('peer_id')}",
        f"chain     id {st.get('chain_id')}, contract {st.get('contract')}",
        f"blocks    head {st.get('head_block')}, acted on up to {st.get('confirmed_block')} "
        f"({st.get('confirmations')} confirmations)",
        f"peers     {st.get('peers')}",
        "tasks     "
        + (", ".join(f"{k} {v}" for k, v in (st.get("tasks") or {}).items() if v) or "none"),
    ]
    if "stake_wei" in st:
        lines.append(
            f"stake     {fmt_eth(st['stake_wei'])} ({fmt_eth(st.get('locked_wei', 0))} locked), "
            f"credits {fmt_eth(st.get('credits_wei', 0))}, "
            f"balance {fmt_eth(st.get('balance_wei', 0))}"
        )
    rpc = st.get("rpc") or {}
    if rpc:
        lines.append(
            f"rpc       {rpc.get('endpoint')}: {rpc.get('requests', 0)} calls, "
            f"{rpc.get('retries', 0)} retries, {rpc.get('failovers', 0)} failovers"
        )
    if st.get("metrics"):
        lines.append(f"metrics   {st['metrics']}/metrics")
    errors = st.get("last_errors") or []
    lines.append("errors    " + (f"last {min(5, len(errors))}:" if errors else "none"))
    for e in errors[-5:]:
        lines.append(f"  {_ago(e.get('at'))} {e.get('level')}: {e.get('message')}")
    click.echo("\n".join(lines))


def _ago(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "?"
    return f"{max(0, int(time.time() - ts))} s ago"


COMMANDS = [init, status]
