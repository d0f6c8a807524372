"""``dnode start``: run a compute node until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
import trio
from click.core import ParameterSource

from dnode.cli import config
from dnode.cli.context import Ctx
from dnode.contracts.rpc import RetryPolicy
from dnode.node import keystore
from dnode.node.config import NodeConfig
from dnode.node.daemon import NodeDaemon
from dnode.node.p2p import open_host
from dnode.node.protocol import TOPIC_TASKS
from dnode.node.state import open_state

log = logging.getLogger("dnode.node")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, msg (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


class ShutdownNoise(logging.Filter):
    """py-libp2p logs a task cancelled by our shutdown (SIGTERM cancels the nursery) as an
    error with a ``trio.Cancelled`` traceback, before "node stopped": that is the shutdown
    working, not a failure. Such records go out as one DEBUG line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("libp2p") or not record.exc_info:
            return True
        if not _only_cancelled(record.exc_info[1]):
            return True
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # the operator's -v level
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text = None, None
        return True


class UnservedProtocolNoise(logging.Filter):
    """py-libp2p logs a seven-line ERROR for every stream a peer refused with multistream's
    "na" (it does not serve that protocol). Nodes ask every connected peer for params and
    join offers, data owners' agents among them, which serve neither: dnode handles that
    answer (``ProtocolNotServed``), so the record becomes one DEBUG line (shown with -v
    debug only). Other failures to open a stream (timeouts, resets) stay errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "libp2p.host.basic_host" or record.levelno < logging.ERROR:
            return True
        text = record.getMessage()
        if "response='na'" not in text:
            return True
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = text.split("\n", 1)[0] + " (protocol not served)", None
        return True


def _only_cancelled(e: BaseException | None) -> bool:
    import trio

    if isinstance(e, trio.Cancelled):
        return True
    if isinstance(e, BaseExceptionGroup):
        return all(_only_cancelled(x) for x in e.exceptions)
    return False


def use_log_format(fmt: str) -> None:
    """Every log line in one format. py-libp2p detaches its "libp2p" logger from the root
    (propagate off, no handler), so its warnings reached stderr bare through
    logging.lastResort; it gets the root's handlers too."""
    root = logging.getLogger()
    if fmt == "json":
        for handler in root.handlers:
            handler.setFormatter(JsonLogFormatter())
    import libp2p  # noqa: F401 - its import resets the "libp2p" logger: do that first

    p2p_log = logging.getLogger("libp2p")
    for handler in root.handlers:
        if handler not in p2p_log.handlers:
            p2p_log.addHandler(handler)
        for noise in (ShutdownNoise, UnservedProtocolNoise):
            if not any(isinstance(f, noise) for f in handler.filters):
                handler.addFilter(noise())
    if root.getEffectiveLevel() > logging.DEBUG:  # its dial loop logs twice every 10 s
        logging.getLogger("libp2p.network.auto_connector").setLevel(logging.WARNING)


def _settings(
    ctx: click.Context, flags: dict[str, Any], config_path: Path | None
) -> dict[str, Any]:
    """Resolve each setting: flag > DNODE_* env > config file > default."""
    c: Ctx = ctx.obj
    default_path = c.home / "config.toml"
    path = config_path or (default_path if default_path.exists() else None)
    from_file = config.load(path) if path is not None else {}
    out: dict[str, Any] = {}
    for key in config.KEYS:
        if key.name == "rpc_urls":
            parent = ctx.parent
            src = parent.get_parameter_source("rpc_urls") if parent else None
            given: Any = c.rpc_urls if src in _EXPLICIT else None
        else:
            src = ctx.get_parameter_source(key.name)
            given = flags[key.name] if src in _EXPLICIT else None
            if isinstance(given, tuple):
                given = list(given)
        if given is not None:
            where = "environment" if src == ParameterSource.ENVIRONMENT else "option"
            out[key.name] = config.check_value(key, given, f"{where} {key.env}")
        elif key.name in from_file:
            out[key.name] = from_file[key.name]
        else:
            out[key.name] = key.default
    return out


_EXPLICIT = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _opt(name: str, *decls: str, **kw: Any) -> Any:
    key = config.BY_NAME[name]
    return click.option(
        *decls, name, envvar=key.env, default=None, show_envvar=True, help=key.help, **kw
    )


@click.command("start")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DNODE_CONFIG",
    default=None,
    help="TOML config file [default: HOME/config.toml if it exists; see `dnode init`].",
)
@_opt("listen", "--listen", multiple=True)
@_opt("bootstrap", "--bootstrap", multiple=True)
@_opt("mdns", "--mdns/--no-mdns")
@_opt("max_tasks", "--max-tasks", type=int)
@_opt("mpc_timeout", "--mpc-timeout", type=float)
@_opt("poll_interval", "--poll-interval", type=float)
@_opt("confirmations", "--confirmations", type=click.IntRange(min=0))
@_opt("metrics_port", "--metrics-port", type=click.IntRange(min=-1, max=65535))
@_opt("log_format", "--log-format", type=click.Choice(["text", "json"]))
@_opt("rpc_timeout", "--rpc-timeout", type=click.FloatRange(min=0.1))
@_opt("rpc_attempts", "--rpc-attempts", type=click.IntRange(min=1))
@_opt("share_retention", "--share-retention", type=click.FloatRange(min=0))
@click.option("--print-config", is_flag=True, help="Print the resolved settings as JSON and exit.")
@click.pass_context
def start(ctx: click.Context, config_path: Path | None, print_config: bool, **flags: Any) -> None:
    """Run a compute node: libp2p host, chain watcher, committee work.

    \b
    Examples:
      dnode --home ~/n1 start                  # prints its multiaddr as JSON
      dnode --home ~/n2 start --listen /ip4/0.0.0.0/tcp/4002 --bootstrap /ip4/…/p2p/…
      dnode --home ~/n1 start --print-config
    """
    c: Ctx = ctx.obj
    s = _settings(ctx, flags, config_path)
    if print_config:
        click.echo(json.dumps(s))
        return
    use_log_format(s["log_format"])
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a daemon says what it does
    # first: a second instance on this home must stop before it touches the key or the chain
    state = open_state(c.home / "state")
    c.rpc_urls = s["rpc_urls"]
    c.rpc_policy = RetryPolicy(attempts=s["rpc_attempts"], timeout=s["rpc_timeout"])
    acct = c.account()
    chain = c.chain(acct)
    cfg = NodeConfig(
        home=c.home,
        account=acct,
        listen=s["listen"],
        bootstrap=s["bootstrap"],
        mdns=s["mdns"],
        max_tasks=s["max_tasks"],
        poll_interval=s["poll_interval"],
        mpc_timeout=s["mpc_timeout"],
        confirmations=s["confirmations"],
        metrics_port=None if s["metrics_port"] < 0 else s["metrics_port"],
        share_retention=s["share_retention"],
    )
    seed = keystore.identity_seed(acct)

    async def main() -> None:
        async with open_host(
            seed, cfg.listen, cfg.bootstrap, mdns=cfg.mdns, topics=[TOPIC_TASKS]
        ) as host:
            daemon = NodeDaemon(cfg, chain, host, state=state)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with trio.open_nursery() as nursery:
                    await nursery.start(daemon.run)
                    ready = {
                        "address": acct.address,
                        "peer_id": host.peer_id,
                        "addrs": host.addrs,
                        "metrics": daemon.metrics_url,
                    }
                    # one JSON line on stdout so supervisors and scripts learn where we listen
                    click.echo(json.dumps(ready), nl=True)
                    async for sig in signals:
                        log.info("received %s, shutting down", signal.Signals(sig).name)
                        # cancelling the nursery stops the watcher, the task workers and
                        # their MPC/HE child processes; leaving open_host closes libp2p
                        nursery.cancel_scope.cancel()
                        break
        log.info("node stopped")

    trio.run(main)
    sys.stdout.flush()


COMMANDS = [start]
