"""`dnode init` and `dnode start`'s settings: file, environment, flags, and bad input."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from dnode.cli import config
from dnode.cli.main import main


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("DNODE_"):
            monkeypatch.delenv(k)


def dnode(home: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """The CLI entry point in-process (same error handling as the installed command)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    code = 0
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(["--home", str(home), *args])
            except SystemExit as e:
                code = int(e.code or 0)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Run(code, out.getvalue(), err.getvalue())


def one_line_error(r: Run, fragment: str) -> None:
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert fragment in lines[0], lines[0]


def test_init_writes_a_commented_default_and_refuses_to_overwrite(tmp_path: Path) -> None:
    r = dnode(tmp_path, "init")
    assert r.returncode == 0, r.stderr
    path = tmp_path / "config.toml"
    text = path.read_text()
    assert tomllib.loads(text) == {}  # everything commented out: the defaults apply
    # uncommenting every setting gives exactly the defaults, and they load
    uncommented = "\n".join(
        line[2:] for line in text.splitlines() if line.startswith("# ") and " = " in line
    )
    assert config.load_text(uncommented, path) == {k.name: k.default for k in config.KEYS}

    path.write_text("max_tasks = 9\n")
    one_line_error(dnode(tmp_path, "init"), "exists; use --force")
    assert path.read_text() == "max_tasks = 9\n"
    assert dnode(tmp_path, "init", "--force").returncode == 0
    assert path.read_text() == text


def resolved(home: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    r = dnode(home, *args, "start", "--print-config", env=env)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'max_tasks = 7\nconfirmations = 5\npoll_interval = 2\nrpc_urls = ["http://a:1", "http://b:2"]\n'
        'log_format = "json"\n'
    )
    s = resolved(tmp_path)
    assert s["max_tasks"] == 7 and s["confirmations"] == 5 and s["poll_interval"] == 2.0
    assert s["rpc_urls"] == ["http://a:1", "http://b:2"]
    assert s["mpc_timeout"] == 120.0  # default
    env = {"DNODE_CONFIRMATIONS": "3", "DNODE_MAX_TASKS": "8", "DNODE_RPC_URL": "http://c:3"}
    s = resolved(tmp_path, env=env)
    assert s["confirmations"] == 3 and s["max_tasks"] == 8 and s["rpc_urls"] == ["http://c:3"]
    s = resolved(tmp_path, "--rpc-url", "http://d:4", "--rpc-url", "http://e:5", env=env)
    assert s["rpc_urls"] == ["http://d:4", "http://e:5"]
    r = dnode(
        tmp_path, "start", "--print-config", "--max-tasks", "9", "--log-format", "text", env=env
    )
    s = json.loads(r.stdout)
    assert s["max_tasks"] == 9 and s["confirmations"] == 3 and s["log_format"] == "text"
    # an explicit --config replaces HOME/config.toml
    other = tmp_path / "other.toml"
    other.write_text("max_tasks = 2\n")
    assert resolved(tmp_path)["max_tasks"] == 7
    r = dnode(tmp_path, "start", "--config", str(other), "--print-config")
    assert json.loads(r.stdout)["max_tasks"] == 2 and json.loads(r.stdout)["confirmations"] == 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("max_taks = 3\n", "unknown key 'max_taks'"),
        ('max_tasks = "three"\n', "max_tasks must be a int"),
        ("confirmations = true\n", "confirmations must be a int"),
        ('rpc_urls = "http://x"\n', "rpc_urls must be a list of str"),
        ('log_format = "xml"\n', "log_format must be one of text, json"),
        ("max_tasks = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "config.toml").write_text(content)
    one_line_error(dnode(tmp_path, "start", "--print-config"), fragment)


def test_bad_env_and_missing_config_are_one_line(tmp_path: Path) -> None:
    one_line_error(
        dnode(tmp_path, "start", "--print-config", env={"DNODE_MAX_TASKS": "lots"}),
        "DNODE_MAX_TASKS",
    )
    one_line_error(
        dnode(tmp_path, "start", "--config", str(tmp_path / "nope.toml"), "--print-config"),
        "nope.toml",
    )


def test_status_without_a_node_is_one_line(tmp_path: Path) -> None:
    one_line_error(dnode(tmp_path, "status"), "no node status")
