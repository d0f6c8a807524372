"""``dnode programs``: every program the registry knows, with its arguments (from its spec)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.sdk.client import describe
from dnode.scheduler.dp import DP_ARG_NAMES
from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs import ProgramSpec, all_programs, get_program


@click.command("programs")
@click.argument("name", required=False)
@pass_ctx
def programs(c: Ctx, name: str | None) -> None:
    """List the programs a task can run, with their arguments (or describe one).

    \b
    Examples:
      dnode programs
      dnode programs mpc.quantiles
      dnode --json programs
    """
    specs = [get_program(name)] if name else all_programs()
    out = [describe(s) for s in specs]
    lines = []
    for d in out:
        flags = " ".join(
            f"--{a['name']} {a['type'].upper()}" + ("" if a["required"] else "?") for a in d["args"]
        )
        lines.append(f"{d['name']:<17} {d['capability']:<4} {d['description']}")
        if name or flags:
            lines.append(f"{'':<22} args: {flags or '-'}")
        if name:
            pad = " " * 22
            lines += [f"{pad} inputs: {d['inputs']}", f"{pad} reveals: {d['reveals']}",
                      f"{pad} to: {d['revealed_to']}", f"{pad} cost: {d['cost']}"]  # fmt: skip
    c.emit({"programs": out}, "\n".join(lines))


def program_args(spec: ProgramSpec, extra: list[str], args_opt: str | None) -> dict[str, Any]:
    """A program's arguments from ``--args FILE|JSON`` and its own flags (``--q 0.5``)."""
    base: dict[str, Any] = {}
    if args_opt:
        text = args_opt
        if not args_opt.lstrip().startswith("{"):
            try:
                text = Path(args_opt).read_text(encoding="utf-8")
            except OSError as e:
                raise CliError(f"cannot read --args {args_opt}: {e.strerror or e}") from None
        try:
            base = json.loads(text)
        except ValueError as e:
            raise CliError(f"--args is not JSON: {e}") from None
        if not isinstance(base, dict):
            raise CliError("--args must be a JSON object")
    if extra and not spec.dp:  # say why the program takes no DP flag (spec.dp_refusal)
        flags = {f"--{n}" for n in DP_ARG_NAMES}
        asked = [f for f in extra if f.split("=", 1)[0] in flags]
        if asked:
            try:
                spec.check_args({asked[0].split("=", 1)[0].lstrip("-"): "1"})
            except InvalidTaskParams as e:
                raise CliError(str(e).removeprefix("invalid task parameters: ")) from None
    if extra:
        opts: list[click.Parameter] = [
            click.Option([f"--{a.name.replace('_', '-')}"], a.name) for a in spec.all_args
        ]
        cmd = click.Command(spec.name, params=opts, add_help_option=False)
        try:
            ctx = cmd.make_context(spec.name, list(extra))
        except click.UsageError as e:
            hint = f"(see dnode programs {spec.name})"
            raise CliError(f"{spec.name}: {e.format_message()} {hint}") from None
        base |= {k: v for k, v in ctx.params.items() if v is not None}
    return base


COMMANDS = [programs]
