#!/usr/bin/env bash
# The local SMTP sink (smtp_sink.py): every message lands as an .eml file in $ESPACE_MAIL_DIR.
#   deploy/local/smtp.sh start|stop|status   (status: 0 running, 3 stopped)
# Needs aiosmtpd in $PYTHON's environment (the project's dev dependencies).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SINK="$ESPACE_ROOT/deploy/local/smtp_sink.py"
PIDFILE="$ESPACE_RUN_DIR/smtp.pid"
LOG="$ESPACE_LOG_DIR/smtp.log"

start() {
  local pid
  if pid=$(live_pid "$PIDFILE" smtp_sink.py); then
    say "already running (pid $pid)"
    return 0
  fi
  rm -f "$PIDFILE"
  port_open "$SMTP_PORT" && die "port $SMTP_PORT is already taken by another process (set SMTP_PORT)"
  [[ -x $PYTHON ]] || die "no Python at $PYTHON (create the project's venv, or set PYTHON)"
  "$PYTHON" -c 'import aiosmtpd' 2>/dev/null || die "aiosmtpd is missing from $PYTHON's environment"
  mkdir -p "$ESPACE_RUN_DIR" "$ESPACE_LOG_DIR" "$ESPACE_MAIL_DIR"
  pid=$(spawn "$LOG" "$PYTHON" -u "$SINK" --host 127.0.0.1 --port "$SMTP_PORT" --maildir "$ESPACE_MAIL_DIR")
  echo "$pid" >"$PIDFILE"
  local i
  for ((i = 0; i < 150; i++)); do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      log_tail "$LOG" 20
      die "the SMTP sink exited during start-up"
    fi
    if port_open "$SMTP_PORT"; then
      say "ready on 127.0.0.1:$SMTP_PORT (pid $pid), mail in $ESPACE_MAIL_DIR"
      return 0
    fi
    sleep 0.1
  done
  terminate "$pid" 5 smtp
  rm -f "$PIDFILE"
  log_tail "$LOG" 20
  die "the SMTP sink did not listen within 15s"
}

stop() {
  local pid
  if pid=$(live_pid "$PIDFILE" smtp_sink.py); then
    terminate "$pid" 10 smtp
    say "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid
  if pid=$(live_pid "$PIDFILE" smtp_sink.py); then
    echo "smtp: running (pid $pid) on 127.0.0.1:$SMTP_PORT, mail in $ESPACE_MAIL_DIR"
  else
    echo "smtp: stopped"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: ${0##*/} start|stop|status" >&2; exit 2 ;;
esac
