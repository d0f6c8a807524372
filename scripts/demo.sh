#!/usr/bin/env bash
# README command 1: install, then run the whole network locally and print the attested result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/dnode demo "$@"
