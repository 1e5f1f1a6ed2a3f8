#!/usr/bin/env bash
# The real-browser test (tests/browser) drives Debian's chromium with Python playwright.
# Idempotent. Never `playwright install`: no browser downloads from outside Debian.
set -euo pipefail

command -v chromium >/dev/null && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps/browser: need root to apt-get install chromium; the browser test will skip (fail under CI=true)" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
