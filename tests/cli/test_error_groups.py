"""A known error raised inside a trio nursery reaches the user as its one line, not as
"internal error: ExceptionGroup ..." (seen from `task contribute` when a seat refused)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from dnode.cli import main as cli_main
from dnode.node.errors import P2PError


@pytest.fixture
def raising() -> Iterator[None]:
    @click.command("boom-group")
    @click.option("--plain", is_flag=True)
    def boom(plain: bool) -> None:
        if plain:
            raise BaseExceptionGroup("tasks", [ValueError("a bug")])
        inner = ExceptionGroup("deliver", [P2PError("could not deliver shares to seat 2")])
        raise ExceptionGroup("nursery", [inner])

    cli_main.cli.add_command(boom)
    yield
    cli_main.cli.commands.pop("boom-group")


def test_a_wrapped_known_error_is_its_own_line(
    raising: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(["boom-group"])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: could not deliver shares to seat 2", err


def test_a_wrapped_bug_is_still_an_internal_error(
    raising: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli_main.main(["boom-group", "--plain"])
    assert "internal error" in capsys.readouterr().err
