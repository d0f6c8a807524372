"""The ``dnode`` command line: one entry point for chain, nodes, requesters and data owners."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dnode.cli.context import DEFAULT_RPC, CliError, Ctx
from dnode.contracts.errors import ContractsError
from dnode.node.errors import NodeError
from dnode.oracle.errors import OracleError
from dnode.scheduler.errors import SchedulerError

USER_ERRORS = (ContractsError, NodeError, OracleError, SchedulerError)


class DnodeGroup(click.Group):
    """Turns every known error into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            raise CliError(str(e)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as e:  # a bug, not a user mistake: still one line unless --debug
            if os.environ.get("DNODE_DEBUG"):
                traceback.print_exc()
            raise CliError(
                f"internal error: {type(e).__name__}: {e} (set DNODE_DEBUG=1 for details)"
            ) from None


@click.group(cls=DnodeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="DNODE_HOME",
    default=Path.home() / ".dnode",
    show_default=True,
    help="Keystore, manifest and node state.",
)
@click.option(
    "--rpc-url",
    "rpc_urls",
    multiple=True,
    envvar="DNODE_RPC_URL",
    help="Any EVM JSON-RPC endpoint (the embedded devnet, anvil, geth, ...); repeat it for "
    f"failover endpoints of the same chain  [default: {DEFAULT_RPC}]",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    envvar="DNODE_MANIFEST",
    default=None,
    help="Deployment manifest [default: HOME/deployment.json].",
)
@click.option(
    "--account",
    "account_hint",
    envvar="DNODE_ACCOUNT",
    default=None,
    help="Address or keystore file of the account to use.",
)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path),
    envvar="DNODE_PASSWORD_FILE",
    default=None,
    help="File holding the keystore password (or set DNODE_PASSWORD).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.pass_context
def cli(
    ctx: click.Context,
    home: Path,
    rpc_urls: tuple[str, ...],
    manifest: Path | None,
    account_hint: str | None,
    password_file: Path | None,
    as_json: bool,
    verbose: int,
) -> None:
    """dnode: privacy-preserving computation coordinated by an EVM chain."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = Ctx(
        home=home,
        rpc_urls=list(rpc_urls) or [DEFAULT_RPC],
        manifest_path=manifest,
        as_json=as_json,
        account_hint=account_hint,
        password_file=password_file,
    )


def register_commands() -> None:
    from dnode.cli import (
        account,
        chain,
        data,
        demo,
        node,
        ops,
        oracle,
        owner,
        programs,
        query,
        task,
    )

    for mod in (chain, account, node, ops, task, data, owner, oracle, programs, query, demo):
        for cmd in mod.COMMANDS:
            cli.add_command(cmd)


register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error, usage mistakes included, is one line on stderr."""
    try:
        cli.main(args=argv, prog_name="dnode", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        msg = " ".join(e.format_message().split())
        if isinstance(e, click.UsageError) and e.ctx is not None:
            msg += f" (see '{e.ctx.command_path} --help')"
        click.echo(f"error: {msg}", err=True)
        sys.exit(e.exit_code)


def run_async(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a trio coroutine from a command (libp2p lives on trio)."""
    import trio

    return trio.run(fn, *args)
