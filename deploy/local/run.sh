#!/usr/bin/env bash
# `make run`: infrastructure, topics, the four services, web and the gateway, demo members; then
# waits. Ctrl-C (or `make stop` from another terminal) stops all of it.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
here="$(dirname "${BASH_SOURCE[0]}")"

stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  "$here/services.sh" stop || true
  "$here/infra.sh" down || true
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

started=$SECONDS
"$here/infra.sh" up
"$PYTHON" -m shared.platform.topics --bootstrap "127.0.0.1:$KAFKA_PORT"
"$here/services.sh" start
IDENTITY_DATABASE_URL="postgresql+asyncpg://espace:espace@127.0.0.1:$PG_PORT/identity" \
  "$PYTHON" -m identity.entrypoints.cli import-members "$here/demo-members.csv"

cat <<INFO

  Espace is up ($((SECONDS - started)) s).
    member space       http://127.0.0.1:${GATEWAY_PORT:-8000}/   (open it in a browser)
    API gateway        http://127.0.0.1:${GATEWAY_PORT:-8000}/api/v1/
    API docs (OpenAPI) http://127.0.0.1:${GATEWAY_PORT:-8000}/docs
    e-mails sent       $ESPACE_MAIL_DIR/*.eml
    logs               $ESPACE_LOG_DIR/
    demo members       deploy/local/demo-members.csv (e.g. 100000001, Martin, Camille, 1985-04-12)

  Try:  curl -s -X POST http://127.0.0.1:${GATEWAY_PORT:-8000}/api/v1/identity/registrations \\
          -H 'content-type: application/json' -d @deploy/local/demo-registration.json
  Ctrl-C stops everything.
INFO

# Wake up when a service dies, so a broken system does not sit there looking alive.
while "$here/services.sh" status >/dev/null; do
  sleep 2
done
say "a service stopped; see $ESPACE_LOG_DIR/"
exit 1
