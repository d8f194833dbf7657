# The two commands: `make up` (bring the dev stack up) and `make test` (run the tests).
SHELL := /bin/bash
PYTHON ?= python3
STACK ?= dev
STATE_DIR := $(CURDIR)/.pulumi-state
SERVER_VENV := $(CURDIR)/.venv-mlflow-server

# A laptop needs no Pulumi account: state in a local folder and a generated passphrase.
# CI sets PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE itself, which win over these.
export PULUMI_BACKEND_URL ?= file://$(STATE_DIR)
ifndef PULUMI_CONFIG_PASSPHRASE
export PULUMI_CONFIG_PASSPHRASE_FILE ?= $(STATE_DIR)/passphrase
endif

.PHONY: up preview doctor destroy gc outputs grafana-password tls-cert backup restore test test-fast test-faults install-dev server-venv lock-image check format snapshot screenshots

# `make doctor` (and so every `up`/`preview` first): Pulumi CLI version, the Python `pulumi install`
# uses, the Docker engine, the passphrase against the stack's salt. One line per check, with the fix.
# The program's venv once `pulumi install` made it (it has `cryptography`), else $(PYTHON).
DOCTOR_PYTHON = $(if $(wildcard .venv/bin/python),.venv/bin/python,$(PYTHON))
doctor:
	$(DOCTOR_PYTHON) -m tools.doctor --stack $(STACK)

# On dev, a changed tracking.mlflowVersion first backs up and stops the running servers
# (tools/dev_upgrade.py): the new image's first server then upgrades the schema with no old writer.
up: doctor $(STATE_DIR)/passphrase
	pulumi install
	pulumi stack select --create $(STACK)
	$(if $(filter dev,$(STACK)),$(DOCTOR_PYTHON) -m tools.dev_upgrade --stack $(STACK))
	pulumi up --stack $(STACK)

preview: doctor $(STATE_DIR)/passphrase
	pulumi install
	pulumi stack select --create $(STACK)
	pulumi preview --stack $(STACK)

destroy:
	pulumi destroy --stack $(STACK)

# Garbage collection of deleted runs, experiments and logged models (rows and bucket objects), in
# the running MLflow container: `--older-than` from gc.olderThan; `make gc OLDER_THAN=0s` overrides.
gc:
	$(DOCTOR_PYTHON) -m tools.dev_gc --stack $(STACK) $(if $(OLDER_THAN),--older-than $(OLDER_THAN))

# Ready-to-paste client environment (contains the password).
outputs:
	pulumi stack output clientEnv --show-secrets --stack $(STACK)

# Grafana's admin password (observability.enabled: true); Grafana is at `pulumi stack output grafanaUrl`.
grafana-password:
	pulumi stack output grafanaPassword --show-secrets --stack $(STACK)

# The proxy's self-signed certificate (proxy.tls: true), for MLFLOW_TRACKING_SERVER_CERT_PATH.
tls-cert:
	pulumi stack output tlsCertificate --stack $(STACK)

# One timestamped backup folder of the dev stack (database dump, every object, manifest) under
# BACKUP_DIR (KEEP_DAYS=N: then delete this stack's older than N days), and its verified restore
# into the running stack: docs/operations.md.
BACKUP_DIR ?= $(CURDIR)/backups
backup:
	$(PYTHON) -m operations.backup backup --stack $(STACK) --dir $(BACKUP_DIR) $(if $(KEEP_DAYS),--keep-days $(KEEP_DAYS))

restore:
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=backups/<folder> [REPLACE=1]" >&2; exit 2; }
	$(PYTHON) -m operations.backup restore --stack $(STACK) $(BACKUP) $(if $(REPLACE),--replace)

$(STATE_DIR)/passphrase:
	mkdir -p $(STATE_DIR)
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

# Everything: unit, whole program under mocks, policies, end to end.
test: server-venv
	$(PYTHON) -m pytest

# No local servers: unit, mocks, policies and static checks (~30 s).
test-fast:
	$(PYTHON) -m pytest -m "not e2e"

# The fault suite alone (tests/faults: kills and restarts the topology's processes under load).
test-faults: server-venv
	$(PYTHON) -m pytest -m faults

install-dev:
	$(PYTHON) -m pip install -r requirements-dev.txt

# The MLflow server for the end-to-end tests, from the image's own locked requirements.
server-venv: $(SERVER_VENV)/.installed
$(SERVER_VENV)/.installed: images/mlflow/requirements.txt
	MLFLOW_SERVER_VENV=$(SERVER_VENV) $(PYTHON) -m testkit.server_venv create

# Re-lock the image after editing images/mlflow/requirements.in (Python 3.11, like the image).
lock-image:
	rm -rf /tmp/mlflow-platform-lock
	$(PYTHON) -m venv /tmp/mlflow-platform-lock
	/tmp/mlflow-platform-lock/bin/pip install --quiet -r images/mlflow/requirements.in
	{ echo "# Generated from requirements.in by \`make lock-image\` (pip freeze of a clean Python 3.11 venv)."; \
	  echo "# Do not edit by hand: the image and the end-to-end tests install exactly this closure."; \
	  /tmp/mlflow-platform-lock/bin/pip freeze --exclude pip --exclude setuptools | sort -f; } > images/mlflow/requirements.txt

# Lint, format check and types (pyproject.toml); CI and the pull-request workflow run it.
check:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

format:
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

# The README's UI screenshots (docs/img/ui-*.png), rendered by the browser test from the real
# UI through nginx; a plain test run writes them to a temp dir instead.
screenshots: server-venv
	E2E_SCREENSHOT_DIR=$(CURDIR)/docs/img $(PYTHON) -m pytest -p no:cacheprovider -q \
		"tests/e2e/test_ui.py::test_ui_through_nginx_over_http"

# After an intended change of what a stack deploys: rewrite the baselines that
# tests/mocks/test_no_replacement.py compares the program against, then review their diff.
snapshot:
	PYTHONPATH=. $(PYTHON) -m tests.mocks.snapshot
