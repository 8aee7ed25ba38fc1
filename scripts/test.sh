#!/usr/bin/env bash
# Run the whole test suite (SQLite and a real PostgreSQL started by the tests via pgserver).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
