"""Off-chain consumers: read attested results (``dnode oracle get``) or stream them as tasks
finalize (``dnode oracle watch``). See docs/protocol.md, "Consuming results"."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.oracle.reader import OracleResult
from dnode.scheduler.programs import TaskParams


@click.group("oracle")
def oracle() -> None:
    """Read attested task results, as an off-chain consumer.

    \b
    Examples:
      dnode oracle get 4
      dnode --json oracle watch --count 10
    """


def _show(c: Ctx, r: OracleResult) -> None:
    if c.as_json:
        click.echo(json.dumps(r.to_json()))
    else:
        click.echo(r.line())


@oracle.command("get")
@click.argument("task_id", type=click.IntRange(min=1))
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The task's params (public): shape and label the values by the program's layout.",
)
@pass_ctx
def get(c: Ctx, task_id: int, params_file: Path | None) -> None:
    """One task's attested result, checked against its on-chain digest and decoded by its
    program's codec: public values (shaped and labelled with --params), or a private (HE)
    result's blob digest and locator.

    \b
    Examples:
      dnode oracle get 4
      dnode --json oracle get 4 --params p.json
    """
    params = None
    if params_file is not None:
        try:
            params = TaskParams.from_bytes(params_file.read_bytes())
        except OSError as e:
            raise CliError(f"cannot read --params {params_file}: {e.strerror or e}") from None
    _show(c, c.client().read(task_id, params))


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
    """Print each task's result as it becomes final (one line each; JSON lines with --json).

    \b
    Examples:
      dnode oracle watch --timeout 0    # until Ctrl-C
      dnode --json oracle watch --count 10
      dnode oracle watch --from-block 0 --timeout 60
    """
    try:
        for r in c.client().watch(
            from_block=from_block, poll=poll, timeout=timeout or None, limit=count
        ):
            _show(c, r)
    except KeyboardInterrupt:  # a watch ends by Ctrl-C: that is not an error
        return


COMMANDS = [oracle]
