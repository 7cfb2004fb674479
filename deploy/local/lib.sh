# shellcheck shell=bash
# Helpers shared by deploy/local/*.sh (sourced after `set -euo pipefail`).

# shellcheck source=SCRIPTDIR/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp: no nc needed).
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True while process $1 exists and is no zombie (an exited child that an init without
# reaping, as in some containers, never collects still answers kill -0).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  if [[ -r /proc/$1/stat ]]; then
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
  fi
}

# Prints the pid recorded in pid file $1 if that process is alive and its command line
# contains $2 (guards against a stale pid file whose pid was reused by another program).
live_pid() {
  local pidfile=$1 pattern=$2 pid cmd
  [[ -s $pidfile ]] || return 1
  # The first line: PostgreSQL's postmaster.pid holds more after it.
  read -r pid <"$pidfile" || [[ -n ${pid:-} ]] || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$pattern"* ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# Starts "$@" detached from this shell (own session, so a Ctrl-C or hang-up of the caller
# does not reach it), output to log file $1, stdin closed; prints its pid.
spawn() {
  local logfile=$1
  shift
  if command -v setsid >/dev/null; then
    # setsid execs in place here (a background job is no process-group leader), so $! is the pid.
    nohup setsid "$@" >>"$logfile" 2>&1 </dev/null &
  else
    nohup "$@" >>"$logfile" 2>&1 </dev/null &
  fi
  printf '%s\n' "$!"
}

# SIGTERM, wait up to $2 s, then SIGKILL. $1 = pid, $3 = name for messages.
terminate() {
  local pid=$1 grace=$2 name=$3 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  say "$name did not stop within ${grace}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  die "$name (pid $pid) survived SIGKILL"
}

# Last lines of a log, for failure messages.
log_tail() {
  [[ -f $1 ]] || return 0
  say "last lines of $1:"
  tail -n "${2:-40}" "$1" >&2
}
