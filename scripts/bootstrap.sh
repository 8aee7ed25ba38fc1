#!/usr/bin/env bash
# Create .venv and install the project's dependencies (once; again when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
extras="${1:-test}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/_}"
if [[ ! -f "$stamp" ]]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet ".[${extras}]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
