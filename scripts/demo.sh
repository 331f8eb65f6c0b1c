#!/usr/bin/env bash
# Install the provider into ./.venv and run it on the embedded demo (no SPIRE, no DNS needed):
# a generated signing key served on http://127.0.0.1:8080. Extra arguments go to `demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/oidc-discovery-provider demo "$@"
