#!/usr/bin/env bash
# All local infrastructure at once: PostgreSQL, Kafka, the SMTP sink, clamd.
#   deploy/local/infra.sh up|down|status
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
services=(postgres kafka smtp clamav)

case "${1:-}" in
  up)
    for s in "${services[@]}"; do "$here/$s.sh" start; done
    ;;
  down)
    # Reverse order; keep going past a failure so nothing is left running needlessly.
    rc=0
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do "$here/${services[i]}.sh" stop || rc=1; done
    exit "$rc"
    ;;
  status)
    rc=0
    for s in "${services[@]}"; do "$here/$s.sh" status || rc=3; done
    exit "$rc"
    ;;
  *)
    echo "usage: ${0##*/} up|down|status" >&2
    exit 2
    ;;
esac
