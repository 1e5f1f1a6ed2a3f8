#!/usr/bin/env bash
# The real-browser test (tests/browser) drives Debian's chromium with Python playwright; without
# a font, headless chromium draws every letter as a box. Idempotent. Never `playwright install`:
# no browser downloads from outside Debian.
set -euo pipefail

missing=()
for package in chromium fonts-dejavu-core; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps/browser: need root to apt-get install ${missing[*]}; the browser test will skip (and fail under CI=true)" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
