#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for local runs and tests, from the machine's server binaries.
#   deploy/local/postgres.sh init|start|stop [fast|immediate]|status|psql [db] [psql args...]
#   (status: 0 running, 3 stopped)
# Listens on 127.0.0.1:$PG_PORT only. Role `espace` (password `espace`, dev only) owns one
# database per service: postgresql+asyncpg://espace:espace@127.0.0.1:$PG_PORT/identity
# Optional: PG_BIN (server binaries), ESPACE_PG_USER (OS user to run as when root),
# PG_SUPERUSER_PASSWORD (for the `postgres` superuser; default `postgres`, dev only).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DATABASES=(identity notifications documents claims)
SUPERPASS="${PG_SUPERUSER_PASSWORD:-postgres}"

find_pg_bin() {
  if [[ -n ${PG_BIN:-} ]]; then
    printf '%s\n' "$PG_BIN"
    return
  fi
  # Debian/Ubuntu keep server binaries off PATH, one folder per major version: take the newest.
  local d
  d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -n $d ]]; then
    printf '%s\n' "$d"
  elif command -v pg_config >/dev/null; then
    pg_config --bindir
  elif command -v pg_ctl >/dev/null; then
    dirname "$(command -v pg_ctl)"
  else
    die "no PostgreSQL server binaries found (apt-get install postgresql, or set PG_BIN)"
  fi
}
PG_BIN=$(find_pg_bin)
[[ -x $PG_BIN/pg_ctl && -x $PG_BIN/initdb ]] || die "no pg_ctl/initdb in $PG_BIN"

# PostgreSQL refuses to run as root: pick an unprivileged OS user to own and run the cluster.
pick_user() {
  if ((EUID != 0)); then
    id -un
  elif [[ -n ${ESPACE_PG_USER:-} ]]; then
    id -u "$ESPACE_PG_USER" >/dev/null 2>&1 || die "ESPACE_PG_USER=$ESPACE_PG_USER does not exist"
    printf '%s\n' "$ESPACE_PG_USER"
  elif id -u postgres >/dev/null 2>&1; then
    echo postgres
  else
    if ! id -u espace-pg >/dev/null 2>&1; then
      command -v useradd >/dev/null || die "no useradd: create an unprivileged user and set ESPACE_PG_USER"
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell "$(command -v nologin || echo /bin/false)" espace-pg
      say "created system user espace-pg to run PostgreSQL"
    fi
    echo espace-pg
  fi
}

# Runs "$@" as $PG_USER, from a folder that user can read (pg_ctl and initdb fail on an
# unreadable cwd, such as /root).
as_pg() {
  if ((EUID != 0)); then
    "$@"
  elif command -v runuser >/dev/null; then
    (cd / && runuser -u "$PG_USER" -- "$@")
  else
    (cd / && su -s /bin/bash "$PG_USER" -c "$(printf '%q ' "$@")")
  fi
}

# Where the cluster lives: $ESPACE_VAR/pg, unless $PG_USER cannot get there (a clone under a
# private home such as /root) or the socket path would pass the ~107-byte limit of unix
# sockets; then a folder under /tmp, with $ESPACE_VAR/pg a symlink to it so later calls find it.
resolve_home() {
  local link="$ESPACE_VAR/pg" fallback
  fallback="${TMPDIR:-/tmp}/espace-pg-$(id -u)-$(printf '%s' "$ESPACE_VAR" | cksum | cut -d' ' -f1)"
  if [[ -L $link ]]; then
    PG_HOME=$(readlink "$link")
    mkdir -p "$PG_HOME" # gone after a reboot cleaned /tmp: a fresh cluster then
    claim "$PG_HOME" shared
    return
  fi
  mkdir -p "$link"
  claim "$link"
  local why
  if ! reachable "$link"; then
    why="$PG_USER cannot reach $link"
  elif ((${#link} + 20 > 100)); then
    why="$link is too long a path for a unix socket"
  else
    PG_HOME=$(cd "$link" && pwd -P)
    return
  fi
  [[ -z "$(ls -A "$link")" ]] || die "$why, and it is not empty: remove it or set ESPACE_VAR"
  rmdir "$link"
  mkdir -p "$fallback"
  claim "$fallback" shared
  reachable "$fallback" || die "$PG_USER cannot use $fallback either"
  ln -s "$fallback" "$link"
  say "$why; using $fallback (symlinked)"
  PG_HOME=$fallback
}
# Gives folder $1 to $PG_USER. With $2=shared (under /tmp), a folder of a third user (say,
# planted there) is never taken over; in our own $ESPACE_VAR, a previous run user's is.
claim() {
  local owner
  owner=$(stat -c %U "$1")
  if [[ ${2:-} == shared && $owner != "$PG_USER" && $owner != "$(id -un)" ]]; then
    die "$1 belongs to $owner, not $PG_USER"
  fi
  if [[ $owner != "$PG_USER" ]]; then
    chown -R "$PG_USER:" "$1"
  fi
  chmod 700 "$1"
}
reachable() { as_pg test -w "$1" -a -x "$1"; }

# Sets PG_USER, PG_HOME, DATA, SOCK, PG_LOG; `psql` needs none of it.
prepare() {
  PG_USER=$(pick_user)
  resolve_home
  DATA="$PG_HOME/data"
  SOCK="$PG_HOME/sock"
  PG_LOG="$PG_HOME/postgres.log" # written by $PG_USER; linked from $ESPACE_LOG_DIR
  mkdir -p "$ESPACE_LOG_DIR"
}

running() { [[ -f $DATA/postmaster.pid ]] && as_pg "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

ensure_cluster() {
  [[ -f $DATA/PG_VERSION ]] && return 0
  local t0=$SECONDS pwfile="$PG_HOME/.pwfile"
  as_pg rm -rf "$DATA"
  # --pwfile: the superuser gets a password; scram everywhere, as in production.
  printf '%s\n' "$SUPERPASS" | as_pg tee "$pwfile" >/dev/null
  if ! as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
    -E UTF8 --no-locale --no-sync --no-instructions >"$ESPACE_LOG_DIR/initdb.log" 2>&1; then
    as_pg rm -f "$pwfile"
    log_tail "$ESPACE_LOG_DIR/initdb.log"
    die "initdb failed"
  fi
  as_pg rm -f "$pwfile"
  # Our settings live in their own file, rewritten at each start (so a new PG_PORT applies).
  echo "include_if_exists = 'espace.conf'" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
  say "initialised $DATA as $PG_USER ($((SECONDS - t0))s)"
}

write_conf() {
  as_pg mkdir -p "$SOCK"
  as_pg tee "$DATA/espace.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh at each start: a throwaway dev cluster, speed over safety.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '${SOCK//\'/\'\'}'
max_connections = 200
# fsync off survives a killed server (the OS keeps what was written), not a machine crash.
fsync = off
# off: a commit is answered before its WAL is written, so a killed server (make chaos stops it
# with -m immediate) can lose the last ~0.2 s of answered commits; chaos sets it on.
synchronous_commit = ${PG_SYNCHRONOUS_COMMIT:-off}
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
# Tiny queries on 2 cores: parallel workers only cost (and need a large /dev/shm in containers).
max_parallel_workers_per_gather = 0
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

# As the superuser over TCP (scram), so root, the OS user and CI all work the same way.
super_psql() {
  PGPASSWORD="$SUPERPASS" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
    -U postgres -d postgres
}

ensure_objects() {
  local dbs
  dbs=$(printf "'%s'," "${DATABASES[@]}")
  super_psql >/dev/null <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'espace') THEN
    CREATE ROLE espace LOGIN PASSWORD 'espace';
  END IF;
END \$\$;
-- CREATEDB lets tests make scratch databases.
ALTER ROLE espace LOGIN CREATEDB PASSWORD 'espace';
SELECT format('CREATE DATABASE %I OWNER espace', d)
  FROM unnest(ARRAY[${dbs%,}]) AS d
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d)
\gexec
EOF
}

start_server() {
  port_open "$PG_PORT" && die "port $PG_PORT is already taken by another process (set PG_PORT)"
  ln -sfn "$PG_LOG" "$ESPACE_LOG_DIR/postgres.log"
  write_conf
  local t0=$SECONDS
  # setsid: the server must not share the caller's Ctrl-C.
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
  if ! as_pg "${detach[@]}" "$PG_BIN/pg_ctl" start -D "$DATA" -l "$PG_LOG" -w -t 60 >/dev/null; then
    log_tail "$PG_LOG"
    die "PostgreSQL did not start"
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.1
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { log_tail "$PG_LOG"; die "not accepting connections"; }
  say "ready on 127.0.0.1:$PG_PORT ($((SECONDS - t0))s, data $DATA, user $PG_USER)"
}

# $1: pg_ctl's shutdown mode, fast by default; immediate is a crash in all but name (the
# chaos suite's), recovered from the WAL at the next start.
stop_server() {
  local mode=${1:-fast}
  as_pg "$PG_BIN/pg_ctl" stop -D "$DATA" -m "$mode" -w -t 30 >/dev/null
  say "stopped ($mode)"
}

case "${1:-}" in
  init)
    prepare
    ensure_cluster
    # Role and databases need a running server: start one briefly if none is.
    if running; then
      ensure_objects
    else
      start_server
      ensure_objects
      stop_server
    fi
    ;;
  start)
    prepare
    ensure_cluster
    if running; then
      say "already running"
    else
      start_server
    fi
    ensure_objects # cheap, and heals a cluster whose init was interrupted
    ;;
  stop)
    # Nothing was ever set up here: nothing to stop (and no user to create).
    [[ -e $ESPACE_VAR/pg ]] || exit 0
    prepare
    case ${2:-fast} in fast | smart | immediate) ;; *) die "stop mode: fast, smart or immediate" ;; esac
    if running; then stop_server "${2:-fast}"; fi
    ;;
  status)
    [[ -e $ESPACE_VAR/pg ]] && prepare
    if [[ -n ${DATA:-} ]] && running; then
      echo "postgres: running (pid $(head -n 1 "$DATA/postmaster.pid")) on 127.0.0.1:$PG_PORT, data $DATA, user $PG_USER"
    else
      echo "postgres: stopped"
      exit 3
    fi
    ;;
  psql)
    shift
    db=identity # the first argument names the database unless it is a psql option
    if [[ $# -gt 0 && $1 != -* ]]; then
      db=$1
      shift
    fi
    PGPASSWORD=espace exec "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U espace -d "$db" "$@"
    ;;
  *)
    echo "usage: ${0##*/} init|start|stop|status|psql [db] [psql args...]" >&2
    exit 2
    ;;
esac
