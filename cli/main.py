"""The ``dnode`` command line: one entry point for chain, nodes, requesters and data owners."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable
from gettext import gettext as _
from pathlib import Path
from typing import Any

import click

from dnode.cli.context import DEFAULT_HOME, DEFAULT_RPC, CliError, Ctx
from dnode.cli.sdk.errors import SdkError
from dnode.contracts.errors import ContractsError
from dnode.node.errors import NodeError
from dnode.oracle.errors import OracleError
from dnode.scheduler.errors import SchedulerError

USER_ERRORS = (SdkError, ContractsError, NodeError, OracleError, SchedulerError)


def _first_user_error(g: BaseExceptionGroup) -> Exception | None:
    """The first known error inside a (nested) exception group, e.g. a failed delivery."""
    for e in g.exceptions:
        if isinstance(e, USER_ERRORS):
            return e
        if isinstance(e, BaseExceptionGroup) and (leaf := _first_user_error(e)) is not None:
            return leaf
    return None


class DnodeGroup(click.Group):
    """Turns every known error into one line on stderr and a non-zero exit, never a traceback.

    Commands load on use (``COMMANDS`` below): listing them reads only their summaries.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is None and cmd_name in COMMANDS:
            module, attr, _ = COMMANDS[cmd_name]
            cmd = getattr(importlib.import_module(module), attr)
            assert isinstance(cmd, click.Command)
            self.add_command(cmd, cmd_name)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, from the summaries: no command module is imported to list them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in self.commands:  # already loaded (or added directly): ask it
                cmd = self.commands[name]
                if cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, _short_help(COMMANDS[name][2], limit)))
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """``--json`` is a global flag, but users type it anywhere (``dnode task status 1
        --json``): hoist it in front of the command (never past a ``--``)."""
        end = args.index("--") if "--" in args else len(args)
        if "--json" in args[1:end]:
            args = ["--json"] + [a for a in args[:end] if a != "--json"] + args[end:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except USER_ERRORS as e:
            raise CliError(str(e)) from None
        except BaseExceptionGroup as g:  # trio nurseries wrap a task's error in a group
            leaf = _first_user_error(g)
            raise (CliError(str(leaf)) if leaf is not None else _internal(g)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as e:  # a bug, not a user mistake: still one line unless --debug
            raise _internal(e) from None


def _internal(e: BaseException) -> CliError:
    """A bug, not a user mistake: one line (the traceback with DNODE_DEBUG=1)."""
    if os.environ.get("DNODE_DEBUG"):
        traceback.print_exc()
    return CliError(f"internal error: {type(e).__name__}: {e} (set DNODE_DEBUG=1 for details)")


def _short_help(summary: str, limit: int) -> str:
    """What click lists for a command whose docstring starts with ``summary``."""
    return click.Command(None, help=summary).get_short_help_str(limit)


#: a typical session, shown at the end of ``dnode --help`` (each line is parsed by
#: tests/cli/test_help_examples.py, as every command's own examples are)
EXAMPLES = """\b
Examples:
  dnode chain                                          # terminal 1: a dev chain on :8545
  dnode deploy --dev-account 0 --challenge-period 60   # contracts + ~/.dnode/deployment.json
  dnode --home ~/n1 account import --private-key-file key1.txt
  dnode --home ~/n1 stake --amount 2ether
  dnode --home ~/n1 start                              # prints its multiaddr; repeat for n2, n3
  dnode --home ~/req task post --program mpc.mean --owner 0xA.. --owner 0xB.. \\
      --reward 0.3ether --bootstrap /ip4/…/p2p/…
  dnode --home ~/a task contribute 1 --inputs my-values.csv --bootstrap /ip4/…/p2p/…
  dnode --json task result 1 --wait 300                # --json: any command, JSON on stdout

Run 'dnode COMMAND --help' for a command's options and examples."""


@click.group(
    cls=DnodeGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXAMPLES,
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="DNODE_HOME",
    default=DEFAULT_HOME,
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Machine-readable output on stdout (anywhere on the line).",
)
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


#: every command: name -> (module, attribute, summary). A module is imported only when its
#: command runs or shows its own help, so ``dnode --help`` never loads web3, libp2p or MPyC.
#: The summary is the first paragraph of the command's docstring (what ``dnode --help`` lists);
#: tests/cli/test_lazy.py checks that it matches the command's own.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "account": (
        "dnode.cli.account",
        "account",
        "Create, import and list keys (standard encrypted JSON keystores).",
    ),
    "balance": (
        "dnode.cli.account",
        "balance",
        "Show an account's ETH balance, stake and credits in the protocol.",
    ),
    "chain": (
        "dnode.cli.chain",
        "chain",
        "Run an embedded EVM dev chain (py-evm) behind JSON-RPC, mining every transaction.",
    ),
    "completion": (
        "dnode.cli.completion",
        "completion",
        "Print the shell completion script for dnode (commands, options, choices).",
    ),
    "data": (
        "dnode.cli.data",
        "data",
        "Publish datasets and browse the catalogue (prices, policies, privacy budgets).",
    ),
    "demo": (
        "dnode.cli.demo",
        "demo",
        "Run a devnet, deploy, start nodes, and compute an MPC mean from 3 data owners.",
    ),
    "deploy": (
        "dnode.cli.chain",
        "deploy",
        "Compile the Vyper contracts from source, deploy them, write the manifest.",
    ),
    "explorer": (
        "dnode.cli.explorer",
        "explorer",
        "Serve a read-only web explorer: datasets, tasks and their timelines, nodes, results "
        "as tables and charts; it updates as blocks arrive.",
    ),
    "init": ("dnode.cli.ops", "init", "Write a commented default config for `dnode start`."),
    "ml": (
        "dnode.cli.ml",
        "ml",
        "Train k-means or logistic regression over owners' tables (--federated: a task per step).",
    ),
    "oracle": (
        "dnode.cli.oracle",
        "oracle",
        "Read attested task results, as an off-chain consumer.",
    ),
    "owner": (
        "dnode.cli.owner",
        "owner",
        "Run a data owner's agent and work through its pending list.",
    ),
    "programs": (
        "dnode.cli.programs",
        "programs",
        "List the programs a task can run, with their arguments (or describe one).",
    ),
    "query": (
        "dnode.cli.query",
        "query",
        "Answer a SQL aggregate over owners' tables in MPC (WHERE, GROUP BY, HAVING; a table "
        "held by several owners is their UNION ALL). --explain says what it reveals and costs.",
    ),
    "synth": (
        "dnode.cli.synth",
        "synth",
        "Differentially private synthetic data from several owners' datasets (MST in MPC).",
    ),
    "stake": (
        "dnode.cli.account",
        "stake",
        "Register this node (peer id derived from its key), declare its price and capacity, "
        "and add stake (each seat collateral's worth of stake is one sortition slot).",
    ),
    "start": (
        "dnode.cli.node",
        "start",
        "Run a compute node: libp2p host, chain watcher, committee work.",
    ),
    "status": (
        "dnode.cli.ops",
        "status",
        "Summarise the node running from HOME (its metrics endpoint, else state/node.json).",
    ),
    "task": (
        "dnode.cli.task",
        "task",
        "Post compute tasks, contribute inputs, follow them and read attested results.",
    ),
    "unbond": (
        "dnode.cli.account",
        "unbond",
        "Start unbonding free stake; it can be withdrawn after the unbonding delay.",
    ),
    "withdraw": (
        "dnode.cli.account",
        "withdraw",
        "Withdraw rewards, refunds and matured unbonded stake to this account.",
    ),
}


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
