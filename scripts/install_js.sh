#!/usr/bin/env bash
# Install the JavaScript packages from the npm registry, each pinned with its lock file: the test
# clients (ethers.js) and the explorer's chart renderer (vega-embed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/tests/js"
if [ ! -f node_modules/ethers/package.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node -e 'import("ethers").then(e => console.log("ethers " + e.version))'
# the explorer's chart renderer (vega, vega-lite, vega-embed; pinned with its lock file)
cd "$ROOT/cli/explorer/js"
if [ ! -f node_modules/vega-embed/build/vega-embed.min.js ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
