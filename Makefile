# Espace — the member space back end. `make run` brings it all up; `make test` tests it all.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
LOCAL := deploy/local
PY := .venv/bin/python

.PHONY: help setup run stop test test-unit test-integration import-members create-agent mail bench clean

help:
	@echo "make run                      start everything with demo data (Ctrl-C stops)"
	@echo "make stop                     stop what 'make run' started"
	@echo "make test                     every test, unit and integration (starts what it needs)"
	@echo "make import-members FILE=x.csv  upsert members into the running system"
	@echo "make create-agent EMAIL=… NAME=…  a back-office agent; prints its one-time password link"
	@echo "make mail                     print the newest e-mail sent (e.g. the activation link)"
	@echo "make bench                    load figures (starts its own system on bench ports)"
	@echo "make clean                    remove local state (var/) and the virtual environment"

# Virtual environment (uv workspace) and the Kafka jars, both cached outside the clone.
setup:
	@$(LOCAL)/prerequisites.sh
	@$(UV) sync --all-packages --frozen --quiet
	@$(LOCAL)/kafka.sh fetch

run: setup
	@$(LOCAL)/run.sh

stop:
	@$(LOCAL)/services.sh stop
	@$(LOCAL)/infra.sh down

test: setup
	@$(PY) -m pytest

test-unit: setup
	@$(PY) -m pytest shared services gateway

test-integration: setup
	@$(PY) -m pytest tests/integration

import-members:
	@test -n "$(FILE)" || { echo "usage: make import-members FILE=members.csv"; exit 2; }
	@source $(LOCAL)/env.sh && IDENTITY_DATABASE_URL="$${IDENTITY_DATABASE_URL:-postgresql+asyncpg://espace:espace@127.0.0.1:$$PG_PORT/identity}" \
		$(PY) -m identity.entrypoints.cli import-members "$(FILE)"

# A management-centre agent: prints the one-time link where the agent sets a password and
# enrols the second factor (TOTP). Run again for an existing e-mail: a new link.
create-agent:
	@test -n "$(EMAIL)" -a -n "$(NAME)" || { echo "usage: make create-agent EMAIL=agent@example.org NAME='Prénom Nom'"; exit 2; }
	@source $(LOCAL)/env.sh && IDENTITY_DATABASE_URL="$${IDENTITY_DATABASE_URL:-postgresql+asyncpg://espace:espace@127.0.0.1:$$PG_PORT/identity}" \
		IDENTITY_PUBLIC_BASE_URL="$${IDENTITY_PUBLIC_BASE_URL:-$${PUBLIC_BASE_URL:-http://127.0.0.1:$${GATEWAY_PORT:-8000}}}" \
		$(PY) -m identity.entrypoints.cli create-agent --email "$(EMAIL)" --name "$(NAME)"

mail:
	@source $(LOCAL)/env.sh && $(PY) $(LOCAL)/last_mail.py

# Figures, not tests: the gateway against a stand-in service (wrk for its throughput: installed
# here when missing and we are root, else the bench falls back to an aiohttp loop), then
# identity under load on a whole system started on bench ports.
bench: setup
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }; } \
		|| echo "wrk not installed: the gateway throughput figure comes from an aiohttp loop"; }
	@$(PY) -m bench.gateway_latency
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-500} $(PY) -m bench.identity_load  # its own ports: runs beside make test
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-500} $(PY) -m bench.cpu_split

clean: stop
	rm -rf var .venv
