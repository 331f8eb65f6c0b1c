#!/usr/bin/env bash
# Install what the benchmark needs, idempotently: Debian's nginx-light and wrk (and util-linux's
# taskset), the project with its dev extras in ./.venv (the fakes and rotation_latency.py), and the
# product as an operator installs it (runtime dependencies + the `speed` extra, uvloop; no dev
# tools) in bench/.venv-product, which runs the provider under test. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/install.sh: apt-get install ${missing[*]}" >&2
  as_root apt-get update -qq
  # policy-rc.d (where present) keeps apt from starting nginx on :80; we never use that service.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
scripts/bootstrap.sh dev
product=bench/.venv-product
[ -x "$product/bin/python" ] || "${PYTHON:-python3}" -m venv "$product"
"$product/bin/python" -m pip install -q --disable-pip-version-check -e ".[speed]" 2>&1 \
  | grep -v -e "^WARNING: Location" -e "is ignored: it is neither" -e "BuildBackendWarning" || true
"$product/bin/python" -c 'import spire_oidc, uvloop'
