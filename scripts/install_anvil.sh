#!/usr/bin/env bash
# Install anvil (a second EVM engine for the tests) from the npm registry. package.json pins the
# exact version and anvil pins its per-platform binary package; `npm ci` is not used because
# npm records only this platform's optional binary in package-lock.json and then rejects it.
set -euo pipefail
cd "$(dirname "$0")/anvil"
if [ ! -x node_modules/.bin/anvil ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/anvil --version | head -1
