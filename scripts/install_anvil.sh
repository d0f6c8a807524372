#!/usr/bin/env bash
# Install anvil (a second EVM engine for the tests) from the npm registry, pinned by package-lock.
set -euo pipefail
cd "$(dirname "$0")/anvil"
if [ ! -x node_modules/.bin/anvil ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/anvil --version | head -1
