#!/usr/bin/env bash
# Install everything the tests need (idempotently) and run the whole suite:
# ruff (lint + format check), mypy --strict on src/, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
scripts/install-node-deps.sh  # Node relying-party libraries for tests/interop
scripts/install-systemd-tools.sh  # systemd-analyze for tests/integration/test_packaging.py
scripts/install-pebble.sh  # Debian's pebble ACME server for tests/integration/test_acme_*.py
scripts/install-haproxy.sh  # Debian's haproxy (TCP balancer) for tests/integration/test_acme_replicas.py
scripts/install-prometheus.sh  # Debian's prometheus + promtool for tests/observability/
scripts/install-sslyze.sh  # the sslyze TLS scanner (own venv) for test_tls_safety.py
scripts/install-storage-servers.sh  # azurite (npm) + a check for SeaweedFS, for tests/*/test_storage_*
export PATH="$PWD/.venv/bin:$PATH"
failed=()
echo "== ruff"
ruff check src tests scripts bench || failed+=("ruff check")
ruff format --check src tests scripts bench || failed+=("ruff format")
echo "== mypy --strict src/"
mypy --strict src/ || failed+=("mypy")
echo "== pytest"
pytest -q -p no:cacheprovider "$@" || failed+=("pytest")
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all checks passed"
