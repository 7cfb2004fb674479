# shellcheck shell=bash
# Defaults for the Docker-free local infrastructure (deploy/local/*.sh).
# Sourced, never run: it sets no shell options, so `source deploy/local/env.sh` is safe in an
# interactive shell too. Every value can be overridden by the caller's environment, e.g.
#   KAFKA_PORT=19092 ESPACE_VAR=/tmp/infra-test deploy/local/infra.sh up

# Repo root from this file's location (deploy/local/env.sh), so the scripts work from any cwd.
ESPACE_ROOT="${ESPACE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# State of this clone (data, logs, pids, mail); var/ is git-ignored.
ESPACE_VAR="${ESPACE_VAR:-$ESPACE_ROOT/var}"
# Downloads that outlive a clone (Kafka jars, Maven repo), shared by every clone of this user.
ESPACE_CACHE="${ESPACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/espace}"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.2}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${PG_PORT:-55432}"
SMTP_PORT="${SMTP_PORT:-1025}"
CLAMD_PORT="${CLAMD_PORT:-3310}"
PYTHON="${PYTHON:-$ESPACE_ROOT/.venv/bin/python}"

# Derived locations.
ESPACE_RUN_DIR="$ESPACE_VAR/run"   # pid files
ESPACE_LOG_DIR="$ESPACE_VAR/log"
ESPACE_MAIL_DIR="$ESPACE_VAR/mail" # one .eml per message received by the SMTP sink

export ESPACE_ROOT ESPACE_VAR ESPACE_CACHE KAFKA_VERSION KAFKA_PORT KAFKA_CONTROLLER_PORT \
  PG_PORT SMTP_PORT CLAMD_PORT PYTHON ESPACE_RUN_DIR ESPACE_LOG_DIR ESPACE_MAIL_DIR
