#!/usr/bin/env bash
# README command 2: install, lint (ruff, mypy), and run the test suite (end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install_anvil.sh
bash scripts/install_js.sh
bash scripts/install_browser.sh  # Chromium + chromedriver (Debian) for the explorer's browser test
.venv/bin/ruff check dnode setup.py contracts node scheduler oracle cli scripts tests
.venv/bin/ruff format --check --quiet dnode setup.py contracts node scheduler oracle cli scripts tests
bash scripts/typecheck.sh
# three workers on CI's 2 cores: the end-to-end modules spend much of their time waiting on
# chain time and deadlines (2 workers kept the cores ~68% busy; clean-clone runs 2026-12-02:
# 18:52 wall with 2, 16:17 with 3, docs/benchmarks.md); a module runs in one worker, so its
# shared cluster is reused.
# --no-loadscope-reorder: hand the modules out heaviest first (tests/conftest.py's
# MODULE_WEIGHT order); xdist's default reorders them by test count, which put the long
# single-test end-to-end modules last, one worker idle while the other ran them
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${DNODE_TEST_WORKERS:-3}" --dist loadfile \
  --no-loadscope-reorder --durations=25 "$@"
