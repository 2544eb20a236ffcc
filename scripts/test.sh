#!/usr/bin/env bash
# Run the test suite in the project's venv, made on first use; arguments go to
# pytest. Set PACSBRIDGE_REQUIRE_PEERS=1 to fail, not skip, when a peer is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest -q "$@"
