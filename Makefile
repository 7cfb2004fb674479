# Espace — the member space back end. `make run` brings it all up; `make test` tests it all.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
LOCAL := deploy/local
PY := .venv/bin/python

.PHONY: help setup run stop test test-unit test-integration import-members create-agent mail bench clean replay-dlq chaos issue-letters print-batch test-k8s release

help:
	@echo "make run                      start everything with demo data (Ctrl-C stops)"
	@echo "make stop                     stop what 'make run' started"
	@echo "make test                     every test, unit and integration (starts what it needs)"
	@echo "make import-members FILE=x.csv  upsert members into the running system"
	@echo "make create-agent EMAIL=… NAME=…  a back-office agent; prints its one-time password link"
	@echo "make import-reimbursements FILE=x.csv  the Sécu (NOEMIE) feed into claims"
	@echo "make demo-reimbursements      a demo NOEMIE feed for the demo members, imported"
	@echo "make import-providers FILE=liste-ps-AAAAMMJJ.csv  the directory of health professionals (Assurance Maladie open data)"
	@echo "make demo-providers [ROWS=5000] [FILE=var/demo-providers.csv]  a synthetic directory file, imported"
	@echo "make issue-letters FILE=x.json  issue letters (contribution calls, tax certificates)"
	@echo "make print-batch              one PDF + CSV manifest of letters queued for post (var/print/<date>/)"
	@echo "make mail                     print the newest e-mail sent (e.g. the activation link)"
	@echo "make bench                    load figures (starts its own system on bench ports)"
	@echo "make replay-dlq TOPIC=t       put the messages parked on t.dlq back on t (once fixed)"
	@echo "make chaos                    kill and cut things under load; fails on a lost or doubled e-mail"
	@echo "make test-k8s                 the manifests against a real kube-apiserver (builds it once: long)"
	@echo "make release SERVICE=x [VERSION=x.y.z]  one workload: contract check, version, CHANGELOG, tag (not pushed)"
	@echo "make clean                    remove local state (var/) and the virtual environment"

# Virtual environment (uv workspace) and the Kafka jars, both cached outside the clone.
setup:
	@$(LOCAL)/prerequisites.sh
	@$(UV) sync --all-packages --frozen --quiet
	@$(LOCAL)/kafka.sh fetch

run: setup
	@$(LOCAL)/run.sh

stop:
	@$(LOCAL)/run.sh stop
	@$(LOCAL)/services.sh stop
	@$(LOCAL)/infra.sh down

test: setup
	@$(PY) -m pytest

test-unit: setup
	@$(PY) -m pytest shared services gateway

test-integration: setup
	@$(PY) -m pytest tests/integration

# A real etcd + kube-apiserver + CloudNativePG webhook on loopback, built from the Go module proxy
# once (12 min measured on 2 busy cores, cached in ~/.cache/espace/k8s; then ~40 s): the overlays (and the vendored CRDs
# against a fresh generation), then deploy/k8s/test_k8s_apiserver.py, which shows broken copies of
# an overlay rejected (not collected by `make test`: deploy/k8s/conftest.py).
test-k8s: setup
	@deploy/k8s/tools/test-k8s.sh
	@$(PY) -m pytest deploy/k8s/test_k8s_apiserver.py -q -p no:cacheprovider

# One workload released on its own (shared/platform/release.py): refuses when its event contracts
# would break a consumer or its committed asyncapi.json/schemas are stale; else sets the version,
# prepends to its CHANGELOG.md, commits and creates the annotated tag <name>-v<version>. Pushing
# the tag and building the image are the next steps, outside (printed at the end).
release: setup
	@test -n "$(SERVICE)" || { echo "usage: make release SERVICE=<identity|notifications|documents|claims|gateway|web> [VERSION=x.y.z]"; exit 2; }
	@$(PY) -m shared.platform.release "$(SERVICE)" $(if $(VERSION),--version "$(VERSION)")
	@$(UV) sync --all-packages --frozen --quiet  # the environment's package metadata: the new version

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
# documents: letters and the print batch, against the running system's database and files.
DOCUMENTS_ENV = source $(LOCAL)/env.sh && DOCUMENTS_DATABASE_URL="$${DOCUMENTS_DATABASE_URL:-postgresql+asyncpg://espace:espace@127.0.0.1:$$PG_PORT/documents}" \
	DOCUMENTS_STORAGE_DIR="$${DOCUMENTS_STORAGE_DIR:-$$ESPACE_VAR/documents}"

issue-letters:
	@test -n "$(FILE)" || { echo "usage: make issue-letters FILE=letters.json"; exit 2; }
	@$(DOCUMENTS_ENV) $(PY) -m documents.entrypoints.cli issue-letters "$(FILE)"

print-batch:
	@$(DOCUMENTS_ENV) $(PY) -m documents.entrypoints.cli print-batch --out "$$ESPACE_VAR/print"

mail:
	@source $(LOCAL)/env.sh && $(PY) $(LOCAL)/last_mail.py

# Figures, not tests: the gateway against a stand-in service (wrk for its throughput: installed
# here when missing and we are root, else the bench falls back to an aiohttp loop), then
# identity, documents and the web pages under load, each on a whole system started on bench ports,
# then the claims feed (ROWS NOEMIE lines for MEMBERS members: imported, settled, alerted; the
# reimbursements page).
bench: setup
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }; } \
		|| echo "wrk not installed: the gateway throughput figure comes from an aiohttp loop"; }
	@$(PY) -m bench.gateway_latency
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-500} $(PY) -m bench.identity_load  # its own ports: runs beside make test
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-500} $(PY) -m bench.cpu_split
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-500} $(PY) -m bench.documents_load
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-500} $(PY) -m bench.web_pages
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-1000} ROWS=$${ROWS:-100000} MEMBERS=$${MEMBERS:-20000} $(PY) -m bench.claims_load
	@ESPACE_TEST_PORT_OFFSET=$${ESPACE_TEST_PORT_OFFSET:-600} $(PY) -m bench.providers  # the directory: 550,000 rows

# Parked messages back on their topic, from where the last replay stopped (shared/platform/dlq.py).
replay-dlq:
	@test -n "$(TOPIC)" || { echo "usage: make replay-dlq TOPIC=identity.members.v1"; exit 2; }
	@source $(LOCAL)/env.sh && $(PY) -m shared.platform.dlq replay "$(TOPIC)" --bootstrap "$${KAFKA_BOOTSTRAP:-127.0.0.1:$$KAFKA_PORT}"

# The real system under a stream of registrations while its parts are killed (bench/chaos.py);
# its own ports (offset 2000 from the test ports) and state (var/chaos).
chaos: setup
	@$(PY) -m bench.chaos

clean: stop
	rm -rf var .venv

# -- claims: the Sécurité sociale (NOEMIE) feed -------------------------------------------------
.PHONY: import-reimbursements demo-reimbursements
import-reimbursements:
	@test -n "$(FILE)" || { echo "usage: make import-reimbursements FILE=noemie.csv"; exit 2; }
	@source $(LOCAL)/env.sh && CLAIMS_DATABASE_URL="$${CLAIMS_DATABASE_URL:-postgresql+asyncpg://espace:espace@127.0.0.1:$$PG_PORT/claims}" \
		CLAIMS_KAFKA_BOOTSTRAP="$${CLAIMS_KAFKA_BOOTSTRAP:-127.0.0.1:$$KAFKA_PORT}" \
		$(PY) -m claims.entrypoints.cli import-reimbursements "$(FILE)"

# A realistic feed for the demo members (var/demo-reimbursements.csv), then imported.
demo-reimbursements:
	@mkdir -p var && $(PY) -m claims.entrypoints.cli demo-reimbursements var/demo-reimbursements.csv \
		--members $(LOCAL)/demo-members.csv $(if $(LINES),--lines $(LINES))
	@$(MAKE) --no-print-directory import-reimbursements FILE=var/demo-reimbursements.csv

# -- claims: the directory of health professionals (annuaire santé, Assurance Maladie open data) --
.PHONY: import-providers demo-providers
import-providers:
	@test -n "$(FILE)" || { echo "usage: make import-providers FILE=liste-ps-AAAAMMJJ.csv"; exit 2; }
	@source $(LOCAL)/env.sh && CLAIMS_DATABASE_URL="$${CLAIMS_DATABASE_URL:-postgresql+asyncpg://espace:espace@127.0.0.1:$$PG_PORT/claims}" \
		$(PY) -m claims.entrypoints.cli import-providers "$(FILE)"

# A synthetic file in the real format (real communes and postcodes), then imported.
DEMO_PROVIDERS_FILE = $(or $(FILE),var/demo-providers.csv)
demo-providers:
	@mkdir -p "$(dir $(DEMO_PROVIDERS_FILE))" && $(PY) -m claims.entrypoints.cli demo-providers "$(DEMO_PROVIDERS_FILE)" --rows $(or $(ROWS),5000)
	@$(MAKE) --no-print-directory import-providers FILE="$(DEMO_PROVIDERS_FILE)"
