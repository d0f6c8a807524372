#!/usr/bin/env bash
# Install the headless browser of the explorer's browser test (tests/test_e2e_sdk_explorer.py):
# Chromium and its WebDriver from Debian's packages (selenium drives /usr/bin/chromedriver).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
