#!/usr/bin/env bash
# Install the JavaScript test clients (ethers.js, pinned with its lock file) from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/../tests/js"
if [ ! -f node_modules/ethers/package.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node -e 'import("ethers").then(e => console.log("ethers " + e.version))'
