#!/usr/bin/env bash
# Start the bot (python -m bot) with its defaults: http://127.0.0.1:3978/api/messages, SQLite in var/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test >&2
exec .venv/bin/python -m bot "$@"
