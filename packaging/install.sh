#!/bin/sh
# Install the OIDC Discovery Provider into PREFIX (default /opt/spire), laid out as in the
# container image: PREFIX/venv holds the program and its runtime dependencies (exactly the
# versions and hashes in requirements.lock), PREFIX/bin/oidc-discovery-provider is the command.
# The virtualenv gets no pip, setuptools or wheel; the build happens outside it.
#
#   packaging/install.sh [PREFIX [WHEEL]]
#
# WHEEL: a prebuilt spire_oidc wheel to install; by default one is built from this source tree.
# Needs Python 3.11+ with venv and pip (Debian 12: apt-get install python3-venv python3-pip).
# Re-running it upgrades in place. The Dockerfile runs this script; so do the tests.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-/opt/spire}
wheel=${2:-}
python=${PYTHON:-python3}

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "install.sh: Python 3.11 or newer is required" >&2; exit 1; }
[ -x "$prefix/venv/bin/python" ] || "$python" -m venv --without-pip "$prefix/venv"
pip() { "$python" -m pip --disable-pip-version-check --python "$prefix/venv/bin/python" "$@"; }

pip install --quiet --require-hashes --no-deps --only-binary=:all: -r "$src/requirements.lock"
if [ -z "$wheel" ]; then
  dist=$(mktemp -d)
  trap 'rm -rf "$dist"' EXIT
  "$python" -m pip --disable-pip-version-check wheel --quiet --no-deps --wheel-dir "$dist" "$src"
  wheel=$(ls "$dist"/spire_oidc-*.whl)
fi
pip install --quiet --no-deps --force-reinstall "$wheel"

mkdir -p "$prefix/bin"
ln -sfn ../venv/bin/oidc-discovery-provider "$prefix/bin/oidc-discovery-provider"
echo "installed $("$prefix/bin/oidc-discovery-provider" -version) in $prefix"
