#!/usr/bin/env bash
# `make run`: infrastructure, topics, the four services, web and the gateway, demo members; then
# supervises them: a component that dies is restarted with backoff (1, 2, 4, 8 s) and a log
# line saying so; after 5 crashes (or failed restarts) within a minute it gives up, says which
# one and where its log is, and stops everything. Ctrl-C (or `make stop`) stops all of it.
#   run.sh                 start and supervise, in the foreground
#   run.sh stop            stop a running supervisor and everything it started
#   run.sh pause NAME      stop NAME and leave it down (a debugger, the chaos suite's outages)
#   run.sh resume NAME     look after NAME again: the supervisor starts it within a second
# NAME: postgres kafka smtp identity notifications documents claims web gateway
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here="$(dirname "${BASH_SOURCE[0]}")"

COMPONENTS=(postgres kafka smtp identity notifications documents claims web gateway)
MAX_CRASHES=5 # ... within WINDOW seconds: then give up
WINDOW=60
SUPERVISOR_PIDFILE="$ESPACE_RUN_DIR/run.pid"

is_component() { [[ " ${COMPONENTS[*]} " == *" $1 "* ]]; }
paused() { [[ -e $ESPACE_RUN_DIR/$1.paused ]]; }

# Prints the pid of component $1 while it runs (the pid files the start scripts write).
component_pid() {
  case $1 in
    postgres) live_pid "$ESPACE_VAR/pg/data/postmaster.pid" postgres ;;
    kafka) live_pid "$ESPACE_RUN_DIR/kafka.pid" "$ESPACE_VAR/kafka/server.properties" ;;
    smtp) live_pid "$ESPACE_RUN_DIR/smtp.pid" smtpsink ;;
    *) live_pid "$ESPACE_RUN_DIR/$1.pid" uvicorn ;;
  esac
}

start_component() {
  case $1 in
    postgres | kafka | smtp) "$here/$1.sh" start ;;
    *) "$here/services.sh" start "$1" ;;
  esac
}

stop_component() {
  case $1 in
    postgres | kafka | smtp) "$here/$1.sh" stop ;;
    *) if pid=$(component_pid "$1"); then terminate "$pid" 15 "$1"; fi ;;
  esac
}

log_of() {
  case $1 in
    kafka) echo "$ESPACE_LOG_DIR/kafka.log (and kafka.out)" ;;
    *) echo "$ESPACE_LOG_DIR/$1.log" ;;
  esac
}

# -- commands for another terminal (make stop, the chaos suite) -----------------------------
case "${1:-}" in
  stop)
    if pid=$(live_pid "$SUPERVISOR_PIDFILE" run.sh); then
      kill -TERM "$pid"
      # It stops the services and the infrastructure itself, then exits.
      for ((i = 0; i < 1200; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
    exit 0
    ;;
  pause)
    is_component "${2:-}" || die "usage: ${0##*/} pause|resume ${COMPONENTS[*]// /|}"
    mkdir -p "$ESPACE_RUN_DIR"
    touch "$ESPACE_RUN_DIR/$2.paused"
    stop_component "$2"
    say "$2 paused: the supervisor leaves it down until '${0##*/} resume $2'"
    exit 0
    ;;
  resume)
    is_component "${2:-}" || die "usage: ${0##*/} pause|resume ${COMPONENTS[*]// /|}"
    rm -f "$ESPACE_RUN_DIR/$2.paused"
    exit 0
    ;;
  "") ;;
  *) echo "usage: ${0##*/} [stop|pause NAME|resume NAME]" >&2; exit 2 ;;
esac

# -- start ----------------------------------------------------------------------------------
if pid=$(live_pid "$SUPERVISOR_PIDFILE" run.sh); then
  die "already running (pid $pid); 'make stop' first"
fi
job= # a restart in progress, run in the background so that a signal is handled at once

stop_all() {
  trap - INT TERM EXIT
  set +e # stop whatever can be stopped
  say "stopping"
  if [[ -n $job ]]; then kill "$job" 2>/dev/null; fi
  "$here/services.sh" stop || true
  "$here/infra.sh" down || true
  rm -f "$SUPERVISOR_PIDFILE" "$ESPACE_RUN_DIR"/*.paused
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

mkdir -p "$ESPACE_RUN_DIR" "$ESPACE_LOG_DIR"
echo $$ >"$SUPERVISOR_PIDFILE"
rm -f "$ESPACE_RUN_DIR"/*.paused
started=$SECONDS
"$here/infra.sh" up
"$PYTHON" -m shared.platform.topics --bootstrap "127.0.0.1:$KAFKA_PORT"
"$here/services.sh" start
IDENTITY_DATABASE_URL="postgresql+asyncpg://espace:espace@127.0.0.1:$PG_PORT/identity" \
  "$PYTHON" -m identity.entrypoints.cli import-members "$here/demo-members.csv"
# Demo letters (documents waits for the members imported just above to reach it).
DOCUMENTS_DATABASE_URL="postgresql+asyncpg://espace:espace@127.0.0.1:$PG_PORT/documents" \
  DOCUMENTS_STORAGE_DIR="${DOCUMENTS_STORAGE_DIR:-$ESPACE_VAR/documents}" \
  "$PYTHON" -m documents.entrypoints.cli issue-letters "$here/demo-letters.json" || say "demo letters not issued"

# The directory of health professionals: a few thousand synthetic rows in the real file format.
"$PYTHON" -m claims.entrypoints.cli demo-providers "$ESPACE_VAR/demo-providers.csv" --rows "${DEMO_PROVIDERS_ROWS:-5000}" >/dev/null &&
  CLAIMS_DATABASE_URL="postgresql+asyncpg://espace:espace@127.0.0.1:$PG_PORT/claims" \
    "$PYTHON" -m claims.entrypoints.cli import-providers "$ESPACE_VAR/demo-providers.csv" 2>/dev/null ||
  say "demo directory not loaded"

cat <<INFO

  Espace is up ($((SECONDS - started)) s).
    member space       http://127.0.0.1:${GATEWAY_PORT:-8000}/   (open it in a browser)
    API gateway        http://127.0.0.1:${GATEWAY_PORT:-8000}/api/v1/
    API docs (OpenAPI) http://127.0.0.1:${GATEWAY_PORT:-8000}/docs
    e-mails sent       $ESPACE_MAIL_DIR/*.eml
    logs               $ESPACE_LOG_DIR/
    demo members       deploy/local/demo-members.csv (e.g. 100000001, Martin, Camille, 1985-04-12)
    demo letters (PDF) $ESPACE_VAR/documents/issued/<member id>/*.pdf  (make print-batch: var/print/<date>/)
    directory (public) http://127.0.0.1:${GATEWAY_PORT:-8000}/api/v1/claims/providers?q=dupont  (5,000 demo rows)

  Try:  curl -s -X POST http://127.0.0.1:${GATEWAY_PORT:-8000}/api/v1/identity/registrations \\
          -H 'content-type: application/json' -d @deploy/local/demo-registration.json
  A component that dies is restarted. Ctrl-C stops everything.
INFO

# -- supervise ------------------------------------------------------------------------------
declare -A crashes=() due=() was_paused=()

# Records a crash of $1 now; gives up (exit 1, stopping everything) at the MAX_CRASHES-th in
# WINDOW seconds, else schedules its restart after the backoff.
crashed() {
  local name=$1 what=$2 t kept=() delay
  for t in ${crashes[$name]:-}; do
    ((EPOCHSECONDS - t < WINDOW)) && kept+=("$t")
  done
  kept+=("$EPOCHSECONDS")
  crashes[$name]="${kept[*]}"
  if ((${#kept[@]} >= MAX_CRASHES)); then
    say "giving up on $name: ${#kept[@]} crashes in the last ${WINDOW} s; its log: $(log_of "$name")"
    exit 1
  fi
  delay=$((1 << (${#kept[@]} - 1)))
  say "$name $what; restarting it in ${delay} s (crash ${#kept[@]} in the last ${WINDOW} s; log: $(log_of "$name"))"
  due[$name]=$((EPOCHSECONDS + delay))
}

while true; do
  for name in "${COMPONENTS[@]}"; do
    if paused "$name"; then
      was_paused[$name]=1
      unset "due[$name]"
      continue
    fi
    if [[ -n ${was_paused[$name]:-} ]]; then
      unset "was_paused[$name]"
      component_pid "$name" >/dev/null || { say "$name resumed: starting it"; due[$name]=0; }
    elif [[ -z ${due[$name]:-} ]] && ! component_pid "$name" >/dev/null; then
      paused "$name" && continue # paused just now, by `run.sh pause`
      crashed "$name" "died"
    fi
    if [[ -n ${due[$name]:-} ]] && ((EPOCHSECONDS >= due[$name])); then
      unset "due[$name]"
      start_component "$name" &
      job=$!
      if wait "$job"; then
        say "$name restarted (pid $(component_pid "$name" || echo '?'))"
      else
        crashed "$name" "did not restart"
      fi
      job=
    fi
  done
  sleep 1 &
  wait $! || true
done
