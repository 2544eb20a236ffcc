#!/usr/bin/env bash
# The checks CI runs, the same way locally: lint, format, types, then the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check
.venv/bin/ruff format --check
.venv/bin/mypy
exec bash scripts/test.sh "$@"
