#!/usr/bin/env bash
# mypy over the installed layout: the source folders mapped under one `dnode` package
# (setup.py maps them at install time; mypy does not follow install-time import hooks).
set -euo pipefail
cd "$(dirname "$0")/.."
view=.typecheck/dnode
rm -rf .typecheck && mkdir -p "$view"
cp dnode/__init__.py "$view/__init__.py"
for layer in contracts scheduler oracle node cli; do ln -s "../../$layer" "$view/$layer"; done
MYPYPATH=.typecheck exec .venv/bin/mypy --cache-dir .typecheck/.mypy_cache -p dnode "$@"
