"""Every command's help lists examples, and every example is a command line dnode accepts.

The whole click tree is walked through the lazy command table (cli/main.py). Each help text
has an "Examples:" block with at least one ``dnode ...`` line; each such line is split as a
shell would split it and parsed by click exactly as ``dnode`` would parse it (options, their
types and choices, required ones, subcommand names, and a program's own flags), so an example
naming an option or a command that does not exist fails here. At least one example of each
command runs that command.

``--json``: it is one option of the root group (``dnode --json COMMAND ...``), so every command
has it. Checked here: the root has it as a flag, no command defines a ``--json`` of its own (it
means one thing everywhere), every command's examples still parse under it, and the commands
that need no chain print exactly one JSON document under it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import click
import pytest

from dnode.cli import main as cli_main
from dnode.cli.main import cli
from dnode.cli.programs import program_args
from dnode.node.owner.state import open_owner_state
from dnode.scheduler.programs import get_program

SHELL_OPERATORS = {">", ">>", "<", "|", "||", "&&", ";", "&", "2>", "2>&1"}
OWNER_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OWNER_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _root_context() -> click.Context:
    """As `dnode` makes it (its context settings: -h/--help), wide enough for any example.
    click caches a command's help option on first use: a context without the settings would
    change `dnode -h` for the rest of the test session."""
    settings = {"max_content_width": 200, "terminal_width": 200, **cli.context_settings}
    return click.Context(cli, info_name="dnode", **settings)


def _tree() -> list[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for the root and every command below it, loaded through the table."""
    out: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(cmd: click.Command, path: tuple[str, ...], ctx: click.Context) -> None:
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"{' '.join(path)} lists {name} but cannot load it"
                walk(sub, (*path, name), click.Context(sub, info_name=name, parent=ctx))

    walk(cli, (), _root_context())
    return out


TREE = _tree()
PATHS = [" ".join(p) or "(root)" for p, _ in TREE]


def _help(path: tuple[str, ...]) -> str:
    ctx = _root_context()
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        sub = cmd.get_command(ctx, name)
        assert sub is not None
        cmd = sub
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    return cmd.get_help(ctx)


def examples(help_text: str) -> list[str]:
    """The command lines of the help's "Examples:" block (continuation lines joined)."""
    lines = help_text.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.strip() == "Examples:"]
    assert len(starts) == 1, "no (or several) 'Examples:' blocks"
    block: list[str] = []
    for ln in lines[starts[0] + 1 :]:
        if not ln.strip():
            break
        if block and block[-1].endswith("\\"):
            block[-1] = block[-1][:-1].rstrip() + " " + ln.strip()
        else:
            block.append(ln.strip())
    out = [ln for ln in block if ln.startswith("dnode ")]
    for ln in block:  # e.g. eval "$(dnode completion bash)"
        out += [m for m in re.findall(r"\$\((dnode [^)]*)\)", ln)]
    return out


def argv_of(line: str) -> list[str]:
    """The arguments dnode receives from an example line (comments, redirections dropped)."""
    words = shlex.split(line, comments=True)
    for i, w in enumerate(words):
        if w in SHELL_OPERATORS:
            words = words[:i]
            break
    assert words[0] == "dnode", line
    return words[1:]


def _make_files_it_needs(cmd: click.Command, parent: click.Context, args: list[str]) -> None:
    """An example may name a file the user has (a key file): make it, under the test's cwd."""
    ctx = click.Context(cmd, parent=parent, resilient_parsing=True)
    opts, _, _ = cmd.make_parser(ctx).parse_args(list(args))
    for p in cmd.params:
        if isinstance(p.type, click.Path) and p.type.exists and opts.get(p.name):
            values = opts[p.name] if isinstance(opts[p.name], list | tuple) else [opts[p.name]]
            for v in values:
                assert not Path(v).is_absolute(), f"example names an absolute path {v}"
                Path(v).parent.mkdir(parents=True, exist_ok=True)
                Path(v).touch()


def resolve(argv: list[str]) -> list[click.Context]:
    """Parse ``dnode ARGV`` as click would before running it; raises click.UsageError (or
    a one-line CliError for a program's own flags) on anything dnode would refuse to parse."""
    ctx = cli.make_context("dnode", list(argv))
    chain = [ctx]
    while isinstance(ctx.command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            raise click.UsageError(f"{ctx.command_path}: names a group, not a command", ctx)
        name, cmd, args = ctx.command.resolve_command(ctx, rest)
        assert cmd is not None and name is not None
        _make_files_it_needs(cmd, ctx, args)
        ctx = cmd.make_context(name, args, parent=ctx)
        chain.append(ctx)
    if ctx.args:  # only commands taking a program's own flags allow extra arguments
        program_args(get_program(ctx.params["program"]), ctx.args, ctx.params.get("args_opt"))
    return chain


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # files an example needs are made here
    for var in [v for v in os.environ if v.startswith("DNODE_")]:
        monkeypatch.delenv(var)  # e.g. DNODE_BOOTSTRAP would stand in for a missing option


def test_the_walk_reaches_every_command_and_subcommand() -> None:
    assert set(cli_main.COMMANDS) <= {p[0] for p, _ in TREE if len(p) == 1}
    assert {"task post", "task result", "data publish", "owner start", "oracle watch"} <= set(PATHS)


@pytest.mark.parametrize("path", [p for p, _ in TREE], ids=PATHS)
def test_help_lists_examples_that_parse(path: tuple[str, ...]) -> None:
    text = _help(path)
    lines = examples(text)
    assert lines, f"`dnode {' '.join(path)} --help` has no example starting with 'dnode '"
    runs_it = False
    for line in lines:
        try:
            chain = resolve(argv_of(line))
        except click.ClickException as e:
            pytest.fail(f"example {line!r}: {e.format_message()}")
        names = tuple(str(c.info_name) for c in chain[1:])
        runs_it = runs_it or names[: len(path)] == path
    assert runs_it, f"no example of `dnode {' '.join(path)}` runs that command"


@pytest.mark.parametrize(
    "line,error",
    [
        ("dnode task post --program mpc.mean --reward 1ether --no-such", "--no-such"),
        ("dnode task post --program mpc.mean --reward 1ether --q 0.5", "No such option '--q'"),
        ("dnode task stat 1", "No such command 'stat'"),
        ("dnode task status 1 --wiat 30", "No such option '--wiat'"),
        ("dnode task status 1 --until done", "'done' is not one of"),
        ("dnode stake", "Missing option '--amount'"),
        ("dnode data show", "Missing argument 'DATASET_ID'"),
        ("dnode data show one", "'one' is not a valid integer"),
        ("dnode task", "Usage: dnode task"),
        ("dnode --json", "names a group"),
    ],
)
def test_a_wrong_example_is_refused(line: str, error: str) -> None:
    with pytest.raises(click.ClickException) as e:
        resolve(argv_of(line))
    assert error in e.value.format_message()


def test_examples_are_read_as_a_shell_would() -> None:
    text = 'Usage: x\n\n  Examples:\n    eval "$(dnode completion bash)"\n    dnode a \\\n' + (
        "        --b 'c d'   # note\n    dnode e > f.txt\n\nOptions:\n    dnode no\n"
    )
    got = examples(text)
    assert got == ["dnode a --b 'c d'   # note", "dnode e > f.txt", "dnode completion bash"]
    assert [argv_of(g) for g in got] == [["a", "--b", "c d"], ["e"], ["completion", "bash"]]


# ---- --json ---------------------------------------------------------------------------------


def test_json_is_the_root_groups_flag_and_means_one_thing_everywhere() -> None:
    root = [p for p in cli.params if "--json" in getattr(p, "opts", [])]
    assert len(root) == 1 and isinstance(root[0], click.Option) and root[0].is_flag
    for path, cmd in TREE[1:]:
        own = [p.name for p in cmd.params if "--json" in getattr(p, "opts", [])]
        assert not own, f"dnode {' '.join(path)} defines its own --json"


def test_json_after_the_command_is_the_root_flag_too() -> None:
    chain = resolve(["task", "result", "1", "--json"])
    assert chain[0].params["as_json"] is True and chain[-1].params["task_id"] == 1
    with pytest.raises(click.UsageError, match="unexpected extra argument"):
        resolve(["task", "result", "1", "--", "--json"])  # past "--": an argument, not a flag


@pytest.mark.parametrize(
    "path", [p for p, c in TREE if not isinstance(c, click.Group)], ids=lambda p: " ".join(p)
)
def test_every_command_still_parses_under_json(path: tuple[str, ...]) -> None:
    for line in examples(_help(path)):
        argv = [a for a in argv_of(line) if a != "--json"]
        chain = resolve(["--json", *argv])
        assert chain[0].params["as_json"] is True


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    try:
        cli_main.main(argv)
    except SystemExit as e:
        err = capsys.readouterr().err
        assert e.code == 0, f"dnode {' '.join(argv)}: exit {e.code}: {err}"
    return capsys.readouterr().out


def test_commands_without_a_chain_print_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "state").mkdir()
    (home / "state" / "node.json").write_text(json.dumps({"address": OWNER_A, "pid": None}))
    open_owner_state(home / "owner-state").close()
    schema = tmp_path / "customers.json"
    schema.write_text(json.dumps({"table": "customers", "columns": [
        {"name": "age", "type": "int", "min": 0, "max": 120},
        {"name": "region", "type": "cat", "domain": ["n", "s"]}]}))  # fmt: skip
    owner_cfg = tmp_path / "owner.toml"
    owner_cfg.write_text('[[dataset]]\nname = "a"\nfile = "a.csv"\n')
    owners = ["--owner", OWNER_A, "--owner", OWNER_B]
    base = ["--json", "--home", str(home), "--rpc-url", "http://127.0.0.1:9"]
    runs = [
        ["programs"],
        ["programs", "mpc.quantiles"],
        ["completion", "bash"],
        ["init"],
        ["account", "list"],
        ["owner", "pending"],
        ["owner", "tasks"],
        ["status"],
        ["start", "--print-config"],
        ["owner", "start", "--config", str(owner_cfg), "--print-config"],
        [
            "task",
            "params",
            "--program",
            "mpc.mean",
            *owners,
            "--column",
            "age:int:0:120",
            "--out",
            str(tmp_path / "p.json"),
        ],  # fmt: skip
        [
            "query",
            "SELECT region, COUNT(*) FROM customers GROUP BY region",
            "--schema",
            str(schema),
            *owners,
            "--explain",
        ],  # fmt: skip
    ]
    for argv in runs:
        out = _run([*base, *argv], capsys)
        docs = [ln for ln in out.splitlines() if ln.strip()]
        assert len(docs) == 1, f"dnode --json {' '.join(argv)} printed {out!r}"
        assert isinstance(json.loads(docs[0]), dict), argv
