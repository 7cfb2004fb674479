#!/usr/bin/env bash
# The local SMTP sink (deploy/local/smtpsink/main.go, Go standard library only): every message
# lands as an .eml file in $ESPACE_MAIL_DIR. Built once into ~/.cache/espace (outside the clone;
# a few seconds of `go build`, no download).
#   deploy/local/smtp.sh start|stop|status|build   (status: 0 running, 3 stopped; build: the binary's path)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC="$ESPACE_ROOT/deploy/local/smtpsink"
BIN="${ESPACE_CACHE:-$HOME/.cache/espace}/smtpsink/$(cat "$SRC/go.mod" "$SRC/main.go" | sha256sum | cut -c1-12)/smtpsink"
PIDFILE="$ESPACE_RUN_DIR/smtp.pid"
LOG="$ESPACE_LOG_DIR/smtp.log"

build() {
  if [[ ! -x "$BIN" ]]; then
    command -v go >/dev/null || die "no Go toolchain on PATH (the machine's go, as for deploy/local/s3server.sh)"
    mkdir -p "$(dirname "$BIN")"
    (cd "$SRC" && GOFLAGS=-mod=readonly go build -trimpath -o "$BIN.tmp" . && mv "$BIN.tmp" "$BIN")
  fi
}

start() {
  local pid
  if pid=$(live_pid "$PIDFILE" smtpsink); then
    say "already running (pid $pid)"
    return 0
  fi
  rm -f "$PIDFILE"
  port_open "$SMTP_PORT" && die "port $SMTP_PORT is already taken by another process (set SMTP_PORT)"
  build
  mkdir -p "$ESPACE_RUN_DIR" "$ESPACE_LOG_DIR" "$ESPACE_MAIL_DIR"
  pid=$(spawn "$LOG" "$BIN" -addr "127.0.0.1:$SMTP_PORT" -maildir "$ESPACE_MAIL_DIR")
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
  if pid=$(live_pid "$PIDFILE" smtpsink); then
    terminate "$pid" 10 smtp
    say "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid
  if pid=$(live_pid "$PIDFILE" smtpsink); then
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
  build) build && echo "$BIN" ;;
  *) echo "usage: ${0##*/} start|stop|status|build" >&2; exit 2 ;;
esac
