"""``dnode completion SHELL``: the shell completion script (click's, for bash, zsh or fish)."""

from __future__ import annotations

import click

from dnode.cli.context import Ctx, pass_ctx


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@pass_ctx
def completion(c: Ctx, shell: str) -> None:
    """Print the shell completion script for dnode (commands, options, choices).

    \b
    Examples:
      eval "$(dnode completion bash)"          # this shell; add it to ~/.bashrc to keep it
      dnode completion zsh > ~/.zfunc/_dnode
      dnode completion fish > ~/.config/fish/completions/dnode.fish

    `dnode --json completion SHELL` prints the script inside JSON.
    """
    from click.shell_completion import get_completion_class

    from dnode.cli.main import cli

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice above lists only shells click knows
    script = cls(cli, {}, "dnode", "_DNODE_COMPLETE").source()
    if c.as_json:
        c.emit({"shell": shell, "script": script})
    else:
        click.echo(script)


COMMANDS = [completion]
