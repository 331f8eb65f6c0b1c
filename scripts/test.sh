#!/usr/bin/env bash
# Install everything the tests need (idempotently) and run the whole suite:
# ruff (lint + format check), mypy --strict on src/, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check src tests scripts bench
ruff format --check src tests scripts bench
echo "== mypy --strict src/"
mypy --strict src/
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
