#!/usr/bin/env bash
# Installs what the slow test suites need beyond PyPI (Debian and npm packages): one script per
# need in tools/install-system-deps.d/, each idempotent and doing nothing that is already done.
# apt-get needs root, as CI runs; without it a script says what it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

for script in tools/install-system-deps.d/*.sh; do
    bash "$script"
done
