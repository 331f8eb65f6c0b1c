#!/usr/bin/env bash
# Install Debian's prometheus (the server and promtool; the observability tests check the shipped
# alert rules with promtool and scrape a real provider with a real Prometheus on loopback).
# Idempotent: does nothing when both binaries are already there. Needs root (or sudo) the first time.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "install-prometheus: installing Debian's prometheus" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null  # fail loudly if the install did not work
