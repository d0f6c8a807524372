"""Off-chain consumers: read attested results (``dnode oracle get``) or stream them as tasks
finalize (``dnode oracle watch``). See docs/protocol.md, "Consuming results"."""

from __future__ import annotations

import json

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.oracle.reader import OracleResult, read, watch


@click.group("oracle")
def oracle() -> None:
    """Read attested task results, as an off-chain consumer."""


def _show(c: Ctx, r: OracleResult) -> None:
    if c.as_json:
        click.echo(json.dumps(r.to_json()))
    else:
        click.echo(r.line())


@oracle.command("get")
@click.argument("task_id", type=click.IntRange(min=1))
@pass_ctx
def get(c: Ctx, task_id: int) -> None:
    """One task's attested result, checked against its on-chain digest and decoded: a public
    aggregate's values, or a private (HE) result's blob digest and locator."""
    _show(c, read(c.chain(), task_id))


@oracle.command("watch")
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="Replay from this block [default: only tasks finalized from now on].",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many results.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Stop after this many seconds (0: until --count or Ctrl-C).",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1, max=60),
    default=1.0,
    show_default=True,
    help="Seconds between chain polls.",
)
@pass_ctx
def watch_cmd(
    c: Ctx, from_block: int | None, count: int | None, timeout: float, poll: float
) -> None:
    """Print each task's result as it becomes final (one line each; JSON lines with --json)."""
    chain = c.chain()
    if from_block is not None and from_block > chain.latest_block():
        raise CliError(f"--from-block {from_block} is past the chain head")
    try:
        for r in watch(
            chain,
            from_block=from_block,
            poll=poll,
            timeout=timeout or None,
            limit=count,
        ):
            _show(c, r)
    except KeyboardInterrupt:  # a watch ends by Ctrl-C: that is not an error
        return


COMMANDS = [oracle]
