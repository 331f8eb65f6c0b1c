#!/usr/bin/env bash
# Install the sslyze TLS scanner used by tests/integration/test_tls_safety.py into its own
# virtualenv, .venv/tools/sslyze (not into .venv: sslyze 6.x pins cryptography<47, which cannot
# share an environment with the acme library's cryptography>=47). Idempotent: does nothing when
# the pinned version is already there. Run after scripts/bootstrap.sh (it needs .venv's Python).
set -euo pipefail
cd "$(dirname "$0")/.."
version=6.3.1
venv=.venv/tools/sslyze

if [ -x "$venv/bin/sslyze" ] \
  && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sslyze"))' 2>/dev/null)" = "$version" ]; then
  exit 0
fi
rm -rf "$venv"
.venv/bin/python -m venv "$venv"
if ! out="$("$venv/bin/python" -m pip install -q --disable-pip-version-check "sslyze==$version" 2>&1)"; then
  echo "$out" >&2
  echo "install-sslyze: pip install sslyze==$version failed" >&2
  exit 1
fi
"$venv/bin/sslyze" --help >/dev/null
