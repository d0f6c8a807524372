"""``dnode explorer``: a local, read-only web app over the chain and the nodes' status."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dnode.cli.context import CliError, Ctx, pass_ctx


@click.command("explorer")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8600, show_default=True,
              help="Port (0: any free port; the ready line says which).")  # fmt: skip
@click.option(
    "--status-url",
    "status_urls",
    multiple=True,
    help="A node's or owner agent's metrics base URL (http://127.0.0.1:PORT, as its ready "
    "line prints): its /status joins the nodes page (repeatable).",
)
@click.option(
    "--bootstrap",
    multiple=True,
    envvar="DNODE_BOOTSTRAP",
    help="Peer multiaddr to fetch tasks' public params (labels, charts) and owners' notices "
    "(the timeline's inputs step) through (repeatable).",
)
@click.option("--poll", type=click.FloatRange(0.1, 60), default=0.5, show_default=True,
              help="Seconds between chain polls.")  # fmt: skip
@pass_ctx
def explorer(
    c: Ctx,
    host: str,
    port: int,
    status_urls: tuple[str, ...],
    bootstrap: tuple[str, ...],
    poll: float,
) -> None:
    """Serve a read-only web explorer: datasets, tasks and their timelines, nodes, results
    as tables and charts; it updates as blocks arrive.

    \b
    Examples:
      dnode explorer                                  # http://127.0.0.1:8600
      dnode --home ~/req explorer --port 0 --bootstrap /ip4/…/p2p/…
      dnode explorer --status-url http://127.0.0.1:9101 --status-url http://127.0.0.1:9102
    """
    from dnode.cli.explorer.app import serve, vendor_missing
    from dnode.cli.explorer.data import Explorer

    missing = vendor_missing()
    if missing:
        raise CliError(f"the chart renderer is not installed ({Path(missing[0]).name}): run "
                       "bash scripts/install_js.sh")  # fmt: skip
    if host not in ("127.0.0.1", "localhost", "::1"):
        c.console.print(f"warning: serving on {host}: anyone who reaches it sees this view")
    ex = Explorer(c.client(), status_urls=status_urls, bootstrap=bootstrap).start(poll)

    def ready(bound: int) -> None:
        url = f"http://{host}:{bound}/"
        if c.as_json:
            click.echo(json.dumps({"url": url, "head": ex.head}))
        else:
            click.echo(f"explorer at {url} (Ctrl-C stops it)")

    try:
        serve(ex, host, port, ready)
    finally:
        ex.stop()


COMMANDS = [explorer]
