#!/usr/bin/env bash
# Make sure `systemd-analyze` is available (tests/integration/test_packaging.py verifies the
# systemd unit with it). Debian's systemd package ships it; nothing is started. Idempotent.
set -euo pipefail
command -v systemd-analyze >/dev/null 2>&1 && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "install-systemd-tools: installing Debian's systemd (for systemd-analyze)" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  systemd >/dev/null
command -v systemd-analyze >/dev/null
