"""``dnode programs``: every program the registry knows, with its arguments (from its spec)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.scheduler.programs import Column, ProgramSpec, TaskParams, all_programs, get_program


def describe(spec: ProgramSpec) -> dict[str, Any]:
    args = [*spec.all_args, *getattr(spec, "he_args", ())]
    return {
        "name": spec.name,
        "id": "0x" + spec.program_id.hex(),
        "capability": spec.capability,
        "family": spec.family or spec.name.split(".")[0],
        "description": spec.description,
        "inputs": (
            f"table columns of type {', '.join(spec.input_types)} "
            f"({spec.min_columns}..{spec.max_columns})"
            if spec.uses_table
            else "the requester's ciphertexts"
        ),
        "args": [
            {
                "name": a.name,
                "type": a.type,
                "help": a.help,
                "default": a.default,
                "required": a.required,
            }
            for a in args
        ],  # fmt: skip
        "reveals": spec.reveals,
        "revealed_to": spec.revealed_to,
        "codec": spec.codec,
        "cost": spec.cost,
    }


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


def table_params(
    spec: ProgramSpec,
    owners: tuple[str, ...],
    columns: tuple[str, ...],
    schema: Path | None,
    args: dict[str, Any],
    input_timeout: int,
    max_rows: int,
    extra: dict[str, Any] | None = None,
    result_key: str = "",
) -> TaskParams:
    """The params of a table program, from the command line (one-line errors); ``extra``:
    public policy the nodes enforce (e.g. the minimum aggregation, node.aggregation)."""
    cols = [Column.parse_flag(x) for x in columns]
    if schema is not None:
        try:
            doc = json.loads(schema.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CliError(f"cannot read --schema {schema}: {e}") from None
        cols += [Column.from_dict(d) for d in (doc.get("columns", doc) if isinstance(doc, dict)
                                               else doc)]  # fmt: skip
    if not owners:
        raise CliError(f"{spec.name} needs at least one --owner (a data owner's address)")
    return TaskParams(
        program=spec.name,
        owners=owners,
        args=args,
        columns=tuple(cols),
        input_timeout=input_timeout,
        max_rows=max_rows,
        extra=dict(extra or {}),
        result_key=result_key,  # validated with the rest: a program may require one
    )


COMMANDS = [programs]
