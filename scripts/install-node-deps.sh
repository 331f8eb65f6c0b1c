#!/usr/bin/env bash
# Install the Node.js relying-party libraries used by tests/interop (jose, jwks-rsa,
# jsonwebtoken, openid-client, axios, picomatch), exactly as pinned by
# tests/interop/node/package-lock.json. Idempotent: does nothing when node_modules already
# matches the lock file. Installs Debian's nodejs and npm first when node is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=tests/interop/node

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-node-deps: installing Debian's nodejs and npm" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

stamp="$dir/node_modules/.installed-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# --ignore-scripts: none of these packages needs an install script, and none gets to run one.
if ! out="$(npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts 2>&1)"; then
  echo "$out" >&2
  echo "install-node-deps: npm ci failed" >&2
  exit 1
fi
echo "$want" >"$stamp"
