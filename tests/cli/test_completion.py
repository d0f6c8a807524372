"""Shell completion: `dnode completion bash` prints click's script, and the completions it
asks for come from the lazily loaded commands (subcommands and choices included)."""

from __future__ import annotations

import os
import subprocess
import sys


def _dnode(*args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "dnode.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def _complete(words: str) -> list[str]:
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    out = _dnode(env={"COMP_WORDS": words, "COMP_CWORD": cword, "_DNODE_COMPLETE": "bash_complete"})
    return [line.split(",", 1)[1] for line in out.splitlines()]


def test_the_script_and_what_it_completes() -> None:
    assert "_DNODE_COMPLETE=bash_complete" in _dnode("completion", "bash")
    assert "compdef" in _dnode("completion", "zsh")
    assert _complete("dnode ta") == ["task"]
    assert _complete("dnode task po") == ["post"]
    assert set(_complete("dnode completion ")) == {"bash", "zsh", "fish"}
