#!/usr/bin/env bash
# Install Debian's pebble (a real ACME server; the ACME tests run it on loopback). Idempotent:
# does nothing when the pebble binary is already there. Needs root (or sudo) the first time.
set -euo pipefail
if command -v pebble >/dev/null 2>&1; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "install-pebble: installing Debian's pebble" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pebble >/dev/null
command -v pebble >/dev/null  # fail loudly if the install did not work
