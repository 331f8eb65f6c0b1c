#!/usr/bin/env bash
# Create ./.venv with Python 3.11+ (installing Debian's python3-venv first when it is missing)
# and install the project into it. Idempotent. Usage: scripts/bootstrap.sh [pip extras, e.g. dev,grpc]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    echo "bootstrap: installing Debian's python3-venv" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv .venv
  fi
fi
# The install is editable, so source edits need no reinstall: skip pip (about 8 s) when this
# extras set was installed from the same pyproject.toml and the console script is there.
stamp=".venv/.bootstrap-${extras:-base}.sha256"
want="$( (cat pyproject.toml; echo "$extras") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/oidc-discovery-provider ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 \
  | grep -v -e "^WARNING: Location" -e "is ignored: it is neither" || true
.venv/bin/python -c 'import spire_oidc' # fail loudly if the install did not work
echo "$want" >"$stamp"
