#!/usr/bin/env bash
# Install Debian's haproxy (the TCP load balancer the ACME replica tests put in front of three
# providers). Idempotent: does nothing when the haproxy binary is already there. Needs root (or
# sudo) the first time. Only the binary is used: the tests run their own instance on loopback;
# the Debian service the package enables is stopped so it does not hold any port.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "install-haproxy: installing Debian's haproxy" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
# The package's own service (if an init system started it) is not needed by the tests.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
  as_root systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
command -v haproxy >/dev/null  # fail loudly if the install did not work
