#!/usr/bin/env bash
# The four services and the gateway as local processes (uvicorn), against the infrastructure
# that infra.sh started (or any given by the environment).
#   services.sh start|stop|status
# Endpoints: ESPACE_DB_URL_PREFIX (database URL without the database name), KAFKA_BOOTSTRAP,
# SMTP_HOST/SMTP_PORT; ports: GATEWAY_PORT, IDENTITY_PORT, NOTIFICATIONS_PORT, DOCUMENTS_PORT,
# CLAIMS_PORT (metrics on each one + 200, or <NAME>_METRICS_PORT), WEB_PORT (the web front end, which the
# gateway serves outside /api/). Each service's own IDENTITY_*/NOTIFICATIONS_*/... variables still win.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GATEWAY_PORT="${GATEWAY_PORT:-8000}"
IDENTITY_PORT="${IDENTITY_PORT:-8001}"
NOTIFICATIONS_PORT="${NOTIFICATIONS_PORT:-8002}"
DOCUMENTS_PORT="${DOCUMENTS_PORT:-8003}"
CLAIMS_PORT="${CLAIMS_PORT:-8004}"
WEB_PORT="${WEB_PORT:-8005}"
ESPACE_DB_URL_PREFIX="${ESPACE_DB_URL_PREFIX:-postgresql+asyncpg://espace:espace@127.0.0.1:$PG_PORT}"
KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
SMTP_HOST="${SMTP_HOST:-127.0.0.1}"
PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$GATEWAY_PORT}"
SERVICES=(identity notifications documents claims)

port_of() {
  local var="${1^^}_PORT"
  printf '%s\n' "${!var}"
}

# Exports NAME_VAR=value unless the caller already set it.
default_env() {
  local name=$1 value=$2
  [[ -n ${!name:-} ]] || export "$name=$value"
}

start_one() {
  local name=$1 module=$2 port pid pidfile logfile
  port=$(port_of "$name")
  pidfile="$ESPACE_RUN_DIR/$name.pid"
  logfile="$ESPACE_LOG_DIR/$name.log"
  if live_pid "$pidfile" "$module" >/dev/null; then
    say "$name already running"
    return 0
  fi
  port_open "$port" && die "port $port (for $name) is taken by another program"
  local prefix="${name^^}"
  default_env "${prefix}_PORT" "$port"
  # Prometheus metrics on a port of their own (never through the gateway): the service's + 200.
  default_env "${prefix}_METRICS_PORT" "$((port + 200))"
  if [[ $name != gateway && $name != web ]]; then
    default_env "${prefix}_DATABASE_URL" "$ESPACE_DB_URL_PREFIX/$name"
    default_env "${prefix}_KAFKA_BOOTSTRAP" "$KAFKA_BOOTSTRAP"
    default_env "${prefix}_IDENTITY_URL" "http://127.0.0.1:$IDENTITY_PORT"
  fi
  pid=$(spawn "$logfile" "$PYTHON" -m uvicorn "$module" --host 127.0.0.1 --port "$port" \
    --no-access-log --no-proxy-headers --timeout-graceful-shutdown 5)
  printf '%s\n' "$pid" >"$pidfile"
}

# True when GET http://127.0.0.1:$1$2 answers 200 (bash's /dev/tcp: no curl needed).
http_ok() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  read -r -t 3 _ status _ <&3 || exit 1
  [[ $status == 200 ]]
) 2>/dev/null

wait_ready() {
  local name=$1 port i
  port=$(port_of "$name")
  for ((i = 0; i < 600; i++)); do
    if http_ok "$port" /readyz; then
      return 0
    fi
    if ! live_pid "$ESPACE_RUN_DIR/$name.pid" uvicorn >/dev/null; then
      log_tail "$ESPACE_LOG_DIR/$name.log"
      die "$name exited during start-up"
    fi
    sleep 0.1
  done
  log_tail "$ESPACE_LOG_DIR/$name.log"
  die "$name not ready after 60 s"
}

start() {
  mkdir -p "$ESPACE_RUN_DIR" "$ESPACE_LOG_DIR"
  export NOTIFICATIONS_SMTP_HOST="${NOTIFICATIONS_SMTP_HOST:-$SMTP_HOST}"
  export NOTIFICATIONS_SMTP_PORT="${NOTIFICATIONS_SMTP_PORT:-$SMTP_PORT}"
  export NOTIFICATIONS_PUBLIC_BASE_URL="${NOTIFICATIONS_PUBLIC_BASE_URL:-$PUBLIC_BASE_URL}"
  export IDENTITY_PUBLIC_BASE_URL="${IDENTITY_PUBLIC_BASE_URL:-$PUBLIC_BASE_URL}"
  # Spans as JSON lines per service, to look at locally (and for tests to check).
  export ESPACE_TRACE_DIR="${ESPACE_TRACE_DIR:-$ESPACE_VAR/trace}"
  for name in "${SERVICES[@]}"; do
    default_env "GATEWAY_${name^^}_URL" "http://127.0.0.1:$(port_of "$name")"
  done
  local name
  for name in "${SERVICES[@]}"; do
    start_one "$name" "$name.main:app"
  done
  # web needs nothing at start (it calls the gateway per request): it starts beside the services,
  # so pages answer as soon as the gateway, which forwards everything outside /api/ to it, does.
  default_env GATEWAY_WEB_URL "http://127.0.0.1:$WEB_PORT"
  default_env WEB_GATEWAY_URL "http://127.0.0.1:$GATEWAY_PORT"
  start_one web web.main:app
  # The gateway starts last: it reads the services' OpenAPI documents when it starts.
  for name in "${SERVICES[@]}" web; do
    wait_ready "$name"
  done
  start_one gateway gateway.main:app
  wait_ready gateway
  say "services ready (member space and API on http://127.0.0.1:$GATEWAY_PORT/)"
}

stop() {
  local name pid
  for name in gateway web "${SERVICES[@]}"; do
    if pid=$(live_pid "$ESPACE_RUN_DIR/$name.pid" uvicorn); then
      terminate "$pid" 15 "$name"
    fi
    rm -f "$ESPACE_RUN_DIR/$name.pid"
  done
}

status() {
  local name rc=0
  for name in "${SERVICES[@]}" web gateway; do
    if pid=$(live_pid "$ESPACE_RUN_DIR/$name.pid" uvicorn); then
      echo "$name: running (pid $pid, port $(port_of "$name"))"
    else
      echo "$name: stopped"
      rc=3
    fi
  done
  return "$rc"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
