#!/usr/bin/env bash
# README command 2: install, lint, and run the test suite (slow end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install_anvil.sh
.venv/bin/ruff check contracts node scheduler oracle cli scripts tests
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
