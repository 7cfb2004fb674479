#!/usr/bin/env bash
# clamd (Debian's clamav-daemon binary) with its own configuration and only the test signature
# database shipped in deploy/local/clamav/ (it detects the EICAR test string anywhere in a file).
#   deploy/local/clamav.sh start|stop|status   (status: 0 running, 3 stopped)
# Listens on 127.0.0.1:$CLAMD_PORT (TCP, INSTREAM).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLAMD_BIN="${CLAMD_BIN:-$(command -v clamd || echo /usr/sbin/clamd)}"
DIR="$ESPACE_VAR/clamav"
PIDFILE="$ESPACE_RUN_DIR/clamd.pid"
LOG="$ESPACE_LOG_DIR/clamd.log"

start() {
  local pid i
  if pid=$(live_pid "$PIDFILE" clamd); then
    say "already running (pid $pid)"
    return 0
  fi
  rm -f "$PIDFILE"
  [[ -x $CLAMD_BIN ]] || die "clamd not found (apt-get install clamav-daemon)"
  port_open "$CLAMD_PORT" && die "port $CLAMD_PORT is already taken by another process (set CLAMD_PORT)"
  mkdir -p "$DIR/db" "$ESPACE_RUN_DIR" "$ESPACE_LOG_DIR"
  cp "$ESPACE_ROOT/deploy/local/clamav/"*.ndb "$DIR/db/"
  cat >"$DIR/clamd.conf" <<CONF
Foreground yes
DatabaseDirectory $DIR/db
TCPSocket $CLAMD_PORT
TCPAddr 127.0.0.1
LogFile $LOG
LogTime yes
Bytecode no
MaxThreads 4
# Above the 5 MB upload limit; anything over the limits is reported, not passed as OK.
StreamMaxLength 8M
MaxFileSize 8M
MaxScanSize 32M
AlertExceedsMax yes
SelfCheck 3600
CONF
  pid=$(spawn "$LOG" "$CLAMD_BIN" -c "$DIR/clamd.conf")
  echo "$pid" >"$PIDFILE"
  for ((i = 0; i < 300; i++)); do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      log_tail "$LOG" 20
      die "clamd exited during start-up"
    fi
    if port_open "$CLAMD_PORT"; then
      say "ready on 127.0.0.1:$CLAMD_PORT (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  terminate "$pid" 5 clamd
  rm -f "$PIDFILE"
  log_tail "$LOG" 20
  die "clamd did not listen within 30s"
}

stop() {
  local pid
  if pid=$(live_pid "$PIDFILE" clamd); then
    terminate "$pid" 10 clamd
    say "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid
  if pid=$(live_pid "$PIDFILE" clamd); then
    echo "clamd: running (pid $pid) on 127.0.0.1:$CLAMD_PORT"
  else
    echo "clamd: stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: ${0##*/} start|stop|status" >&2; exit 2 ;;
esac
