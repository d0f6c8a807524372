"""``dnode owner``: a data owner's agent (start) and its pending list (pending, approve,
reject, tasks). The agent contributes the owner's datasets to the tasks that name the owner
and fit its policy (see node.owner); the other commands work on the agent's state db, so they
work whether or not the agent is running."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click
import trio

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.node import use_log_format
from dnode.cli.sdk.agent import serve_owner_agent
from dnode.node.owner.config import OwnerConfig, load_config
from dnode.node.owner.state import PENDING, Decision, open_owner_state, shared_state

log = logging.getLogger("dnode.owner")


@click.group("owner")
def owner() -> None:
    """Run a data owner's agent and work through its pending list.

    \b
    Examples:
      dnode --home ~/a owner start --bootstrap /ip4/…/p2p/…
      dnode --home ~/a owner pending
      dnode --home ~/a owner approve 7
    """


@owner.command("start")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DNODE_OWNER_CONFIG",
    default=None,
    help="TOML config listing the datasets and their policies [default: HOME/owner.toml].",
)
@click.option("--bootstrap", multiple=True, help="Peer multiaddr to join through (repeatable).")
@click.option("--listen", multiple=True, help="libp2p listen multiaddr (repeatable).")
@click.option("--metrics-port", type=click.IntRange(min=-1, max=65535), default=None,
              help="127.0.0.1 port of /metrics and /status (0: any, -1: off).")  # fmt: skip
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None)
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=None)
@click.option("--confirmations", type=click.IntRange(min=0), default=None)
@click.option("--print-config", is_flag=True, help="Print the resolved settings and exit.")
@pass_ctx
def start(
    c: Ctx,
    config_path: Path | None,
    bootstrap: tuple[str, ...],
    listen: tuple[str, ...],
    metrics_port: int | None,
    log_format: str | None,
    poll_interval: float | None,
    confirmations: int | None,
    print_config: bool,
) -> None:
    """Run the owner agent until SIGTERM/SIGINT: watch the chain, decide on each task that
    names this owner, and secret-share the dataset to its committee, once per round.

    \b
    Examples:
      dnode --home ~/a owner start --bootstrap /ip4/…/p2p/…
      dnode --home ~/a owner start --config hospital.toml --print-config
    """
    path = config_path or c.home / "owner.toml"
    cfg = load_config(
        path,
        c.home,
        bootstrap=list(bootstrap) or None,
        listen=list(listen) or None,
        metrics_port=None if metrics_port is None else (metrics_port if metrics_port >= 0 else -1),
        log_format=log_format,
        poll_interval=poll_interval,
        confirmations=confirmations,
    )
    if cfg.metrics_port is not None and cfg.metrics_port < 0:
        cfg.metrics_port = None
    if print_config:
        click.echo(json.dumps(_settings(cfg), default=str))
        return
    use_log_format(cfg.log_format)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    open_owner_state(cfg.state_dir).close()  # first: one agent per home (before unlocking)
    acct = c.account()
    chain = c.chain(acct)

    async def until_signalled() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for sig in signals:
                log.info("received %s, shutting down", signal.Signals(sig).name)
                return

    def ready(info: dict[str, Any]) -> None:
        click.echo(json.dumps(info), nl=True)

    trio.run(serve_owner_agent, cfg, acct, chain, ready, until_signalled)
    log.info("owner agent stopped")
    sys.stdout.flush()


def _settings(cfg: OwnerConfig) -> dict[str, Any]:
    out = {k: v for k, v in cfg.__dict__.items() if k != "datasets"}
    out["datasets"] = [
        {
            "name": d.name,
            "file": str(d.file),
            "dataset_id": d.dataset_id,
            "policy": d.policy.__dict__,
        }  # fmt: skip
        for d in cfg.datasets
    ]
    return out


def _state(c: Ctx) -> Any:
    return shared_state(c.home / "owner-state")


def _line(d: Decision) -> str:
    why = f": {d.reason}" if d.reason else ""
    return f"task {d.task_id} ({d.program}, requester {d.requester}) {d.state}{why}"


@owner.command("pending")
@pass_ctx
def pending(c: Ctx) -> None:
    """Tasks outside the policy, waiting for approve or reject.

    \b
    Examples:
      dnode --home ~/a owner pending
      dnode --json --home ~/a owner pending
    """
    items = [d for d in _state(c).decisions([PENDING], open_only=True)]
    c.emit(
        {"pending": [d.to_json() for d in items]},
        "\n".join(_line(d) for d in items) or "no pending task",
    )


@owner.command("tasks")
@pass_ctx
def tasks(c: Ctx) -> None:
    """Every task the agent decided on, with its decision and reason.

    \b
    Examples:
      dnode --home ~/a owner tasks
      dnode --json --home ~/a owner tasks
    """
    items = _state(c).decisions()
    c.emit({"tasks": [d.to_json() for d in items]}, "\n".join(_line(d) for d in items) or "-")


@owner.command("approve")
@click.argument("task_id", type=click.IntRange(min=1))
@pass_ctx
def approve(c: Ctx, task_id: int) -> None:
    """Contribute to a pending task (the running agent shares once its committee sits).

    \b
    Examples:
      dnode --home ~/a owner approve 7
    """
    d = _state(c).approve(task_id)
    c.emit(d.to_json(), f"task {task_id} approved: the agent contributes to it")


@owner.command("reject")
@click.argument("task_id", type=click.IntRange(min=1))
@click.option("--reason", default="", help="Why (the requester sees it in dnode task status).")
@pass_ctx
def reject(c: Ctx, task_id: int, reason: str) -> None:
    """Refuse a pending task; the reason reaches the requester.

    \b
    Examples:
      dnode --home ~/a owner reject 7 --reason "only mean and count"
    """
    if len(reason) > 500:
        raise CliError("--reason is limited to 500 characters")
    d = _state(c).reject(task_id, reason)
    c.emit(d.to_json(), f"task {task_id} rejected ({d.reason})")


COMMANDS = [owner]


def owner_notices(task_id: int, bootstrap: tuple[str, ...]) -> list[dict[str, Any]]:
    """The owners' signed notices on ``task_id``, as the nodes reached through ``bootstrap``
    keep them (signatures checked here)."""
    from dnode.node import peer_client

    async def fetch() -> list[dict[str, Any]]:
        async with peer_client.ephemeral_host(list(bootstrap)) as host:
            found = await peer_client.fetch_notices(host, task_id)
        return [
            {"owner": n.owner, "state": n.state, "reason": n.reason, "at": n.seq / 1000}
            for n in found
        ]

    return list(trio.run(fetch))


def notice_lines(owners: list[dict[str, Any]] | None) -> str:
    if owners is None:
        return ""
    if not owners:
        return "\nowners: no owner agent has sent a notice"
    return "".join(
        f"\nowner {o['owner']}: {o['state']}" + (f" ({o['reason']})" if o["reason"] else "")
        for o in owners
    )
