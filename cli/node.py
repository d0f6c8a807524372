"""``dnode start``: run a compute node until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import signal

import click
import trio

from cli.context import Ctx, pass_ctx
from node import keystore
from node.daemon import NodeConfig, NodeDaemon
from node.p2p import open_host
from node.protocol import TOPIC_TASKS
from node.state import open_state

log = logging.getLogger("dnode.node")


@click.command("start")
@click.option(
    "--listen",
    multiple=True,
    default=["/ip4/127.0.0.1/tcp/0"],
    show_default=True,
    help="libp2p listen multiaddr (repeatable).",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="DNODE_BOOTSTRAP",
    help="Multiaddr of a peer to join through, with /p2p/<id> (repeatable).",
)
@click.option("--mdns/--no-mdns", default=False, help="Discover peers on the LAN with mDNS.")
@click.option("--max-tasks", default=4, show_default=True, help="Tasks this node runs at once.")
@click.option(
    "--mpc-timeout",
    default=120.0,
    show_default=True,
    help="Seconds an MPC session may take before the task fails on this node.",
)
@click.option(
    "--poll-interval", default=0.5, show_default=True, help="Seconds between chain polls."
)
@pass_ctx
def start(
    c: Ctx,
    listen: tuple[str, ...],
    bootstrap: tuple[str, ...],
    mdns: bool,
    max_tasks: int,
    mpc_timeout: float,
    poll_interval: float,
) -> None:
    """Run a compute node: libp2p host, chain watcher, committee work."""
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)  # a daemon says what it does
    # first: a second instance on this home must stop before it touches the key or the chain
    state = open_state(c.home / "state")
    acct = c.account()
    chain = c.chain(acct)
    cfg = NodeConfig(
        home=c.home,
        account=acct,
        listen=list(listen),
        bootstrap=list(bootstrap),
        mdns=mdns,
        max_tasks=max_tasks,
        poll_interval=poll_interval,
        mpc_timeout=mpc_timeout,
    )
    seed = keystore.identity_seed(acct)

    async def main() -> None:
        async with open_host(
            seed, cfg.listen, cfg.bootstrap, mdns=mdns, topics=[TOPIC_TASKS]
        ) as host:
            daemon = NodeDaemon(cfg, chain, host, state=state)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with trio.open_nursery() as nursery:
                    await nursery.start(daemon.run)
                    ready = {"address": acct.address, "peer_id": host.peer_id, "addrs": host.addrs}
                    # one JSON line on stdout so supervisors and scripts learn where we listen
                    click.echo(json.dumps(ready), nl=True)
                    async for sig in signals:
                        log.info("received %s, shutting down", signal.Signals(sig).name)
                        nursery.cancel_scope.cancel()
                        break

    trio.run(main)


COMMANDS = [start]
