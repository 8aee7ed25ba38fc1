#!/usr/bin/env bash
# Install what the Microsoft 365 Agents Playground needs to talk to the bot without a Teams tenant:
#   - the playground itself (npm, into .playground/, which is gitignored),
#   - Debian's Chromium (for the headless end-to-end walk; not needed for a person with a browser),
#   - the playwright Python package in .venv (never `playwright install`: we use /usr/bin/chromium).
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PLAYGROUND_VERSION="${PLAYGROUND_VERSION:-0.2.28}"
PLAYGROUND_DIR="$ROOT/.playground"
PLAYGROUND_PKG="$PLAYGROUND_DIR/node_modules/@microsoft/m365agentsplayground/package.json"

log() { printf '[install_playground] %s\n' "$*" >&2; }

# 1. The playground (npm).
if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: install Node.js 20 (or newer) first"
    exit 1
fi
installed=""
if [[ -f "$PLAYGROUND_PKG" ]]; then
    installed="$(node -p "require('$PLAYGROUND_PKG').version" 2>/dev/null || true)"
fi
if [[ "$installed" == "$PLAYGROUND_VERSION" && -x "$PLAYGROUND_DIR/node_modules/.bin/agentsplayground" ]]; then
    log "playground $installed already in .playground/"
else
    log "installing @microsoft/m365agentsplayground@$PLAYGROUND_VERSION into .playground/"
    mkdir -p "$PLAYGROUND_DIR"
    npm install --prefix "$PLAYGROUND_DIR" --no-audit --no-fund --loglevel=error \
        "@microsoft/m365agentsplayground@$PLAYGROUND_VERSION"
fi

# 2. Chromium (Debian package; playwright drives it through executable_path). Only the headless walk
#    (tests/e2e) needs it, so a machine without apt-get gets a warning, not a failure.
if [[ -x /usr/bin/chromium ]]; then
    log "chromium present: /usr/bin/chromium"
elif [[ "${SKIP_CHROMIUM:-0}" == "1" ]]; then
    log "SKIP_CHROMIUM=1: not installing chromium (the e2e walk will be skipped)"
elif ! command -v apt-get >/dev/null 2>&1; then
    log "WARNING: /usr/bin/chromium is missing and there is no apt-get: the e2e walk will be skipped"
else
    SUDO=""
    if [[ "$(id -u)" != "0" ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    if [[ "$(id -u)" != "0" && -z "$SUDO" ]]; then
        log "WARNING: /usr/bin/chromium is missing; as root run: apt-get install -y chromium fonts-liberation"
    else
        log "installing chromium and fonts-liberation with apt-get (~0.5 GB)"
        if ! { $SUDO apt-get update -qq &&
               DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-liberation; }; then
            log "WARNING: apt-get could not install chromium: the e2e walk will be skipped"
        fi
    fi
fi

# 3. playwright (the Python package only, never `playwright install`) in the project's venv.
if [[ -x "$ROOT/.venv/bin/python" ]]; then
    if "$ROOT/.venv/bin/python" -c "import playwright" >/dev/null 2>&1; then
        log "playwright already in .venv"
    else
        log "pip-installing playwright into .venv"
        "$ROOT/.venv/bin/python" -m pip install -q "playwright>=1.45" ||
            log "WARNING: could not pip-install playwright: the e2e walk will be skipped"
    fi
else
    log ".venv does not exist yet: create it with scripts/bootstrap.sh test,e2e (brings playwright)"
fi
log "done"
