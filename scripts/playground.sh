#!/usr/bin/env bash
# Talk to the bot without a Teams tenant: the bot (development mode, SQLite) plus the Microsoft 365 Agents
# Playground, a local Teams look-alike. Open the printed URL in a browser, pick "Personal Chat" and write
# "ny sag". Ctrl-C stops both.
#
#   scripts/playground.sh                          # bot on :3978, playground UI on http://localhost:56150/
#   BOT_PORT=3979 PLAYGROUND_PORT=56151 scripts/playground.sh
#
# State lives in var/: var/playground.db (the cases; delete it to start over), var/playground/ (the
# playground's working directory: its config .m365agentsplayground.yml with Danish users and the team
# "Sundhedsaftalen", and bot.log). Never expose these ports: the bot does not authenticate in this mode.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BOT_PORT="${BOT_PORT:-3978}"
PLAYGROUND_PORT="${PLAYGROUND_PORT:-56150}"
WORKDIR="$ROOT/var/playground"
BOT_LOG="$WORKDIR/bot.log"

log() { printf '[playground] %s\n' "$*" >&2; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 1. The Python environment (bootstrap.sh when the project has it).
if [[ ! -x .venv/bin/python ]]; then
    if [[ -x scripts/bootstrap.sh ]]; then
        log "creating .venv (scripts/bootstrap.sh test,e2e)"
        scripts/bootstrap.sh test,e2e
    else
        log "creating .venv"
        python3 -m venv .venv
        .venv/bin/python -m pip install -q '.[test,e2e]'
    fi
fi

# 2. The playground (npm), and what the headless walk needs; idempotent.
scripts/install_playground.sh

for port in "$BOT_PORT" "$PLAYGROUND_PORT"; do
    if port_busy "$port"; then
        log "port $port is already in use (another bot or playground?): stop it, or set BOT_PORT / PLAYGROUND_PORT"
        exit 1
    fi
done

# 3. The playground's config (written once; edit it freely afterwards).
mkdir -p "$WORKDIR"
config="$(.venv/bin/python -m tests.e2e.walk_playground --write-config "$WORKDIR")"
log "playground config: ${config#"$ROOT"/}"

# 4. The bot, in the background; it and the playground are stopped whenever this script ends.
BOT_PID=""
PLAYGROUND_PID=""
stop() {  # stop PID [name]
    local pid="$1"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    log "stopping the $2 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
    trap - EXIT INT TERM
    stop "$PLAYGROUND_PID" playground
    stop "$BOT_PID" bot
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the bot on http://127.0.0.1:$BOT_PORT (log: ${BOT_LOG#"$ROOT"/})"
# Empty app id and password: development mode even when a .env file holds real credentials.
MICROSOFT_APP_ID="" MICROSOFT_APP_PASSWORD="" \
DATABASE_URL="sqlite+aiosqlite:///var/playground.db" HOST=127.0.0.1 PORT="$BOT_PORT" \
    .venv/bin/python -m bot >"$BOT_LOG" 2>&1 &
BOT_PID=$!

ready=""
for _ in $(seq 300); do
    if ! kill -0 "$BOT_PID" 2>/dev/null; then
        log "the bot exited during start-up; the end of ${BOT_LOG#"$ROOT"/}:"
        tail -n 20 "$BOT_LOG" >&2
        exit 1
    fi
    if .venv/bin/python - "$BOT_PORT" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
    then
        ready=1
        break
    fi
    sleep 0.2
done
if [[ -z "$ready" ]]; then
    log "the bot did not answer /healthz within 60 s; see ${BOT_LOG#"$ROOT"/}"
    exit 1
fi
log "bot ready"

# 5. The playground; this script waits for it.
cat >&2 <<EOF

  Microsoft 365 Agents Playground:  http://localhost:$PLAYGROUND_PORT/
  Open it, choose "Personal Chat" and write: hjælp · ny sag · fortsæt · mine sager
  (In the team "Sundhedsaftalen" the bot answers only when @mentioned.)  Ctrl-C stops everything.

EOF
cd "$WORKDIR"
TEAMSAPPTESTER_BROWSER="${TEAMSAPPTESTER_BROWSER:-none}" \
    "$ROOT/.playground/node_modules/.bin/agentsplayground" \
    -e "http://127.0.0.1:$BOT_PORT/api/messages" -c msteams -p "$PLAYGROUND_PORT" --dt &
PLAYGROUND_PID=$!
status=0
wait "$PLAYGROUND_PID" || status=$?  # `wait`, not a foreground child, so Ctrl-C and TERM act at once
PLAYGROUND_PID=""
log "the playground stopped (exit $status)"
exit "$status"
