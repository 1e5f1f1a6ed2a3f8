#!/usr/bin/env bash
# Installs what the slow test suites need beyond PyPI: Debian packages and npm packages.
# Idempotent; does nothing that is already done. Needs root for apt-get (as CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v node >/dev/null && command -v npm >/dev/null || apt_packages+=(nodejs npm)
command -v chromium >/dev/null || apt_packages+=(chromium)

if ((${#apt_packages[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-system-deps: need root to apt-get install ${apt_packages[*]}; the suites that need them will be skipped" >&2
    else
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
    fi
fi

for script in tools/install-system-deps.d/*.sh; do
    [[ -e $script ]] && bash "$script"
done
true
