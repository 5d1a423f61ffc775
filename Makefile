# make demo: the whole loop on the Ames data.  make test: the test suite.  Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installs are pinned by LOCK, a pip constraints file that uv resolves from pyproject.toml's ranges (`make lock`).
# LOCK= (empty) installs the newest versions the ranges allow instead, with a stamp of its own (ci.yml's newest job).
LOCK_FILE := requirements/lock.txt
LOCK ?= $(LOCK_FILE)
STAMP := $(VENV)/.installed-stamp$(if $(LOCK),,-newest)
UV_VERSION := 0.13.9
UV_VENV := .tools/uv
UV_STAMP := $(UV_VENV)/.uv-$(UV_VERSION)
DEMO_DIR ?= demo-project
CODE := src tests $(wildcard bench)

.PHONY: install demo test test-unit test-container lint lint-deploy format bench mlflow clean
.PHONY: lock lock-upgrade check-lock

$(STAMP): pyproject.toml $(LOCK)
	rm -f $(VENV)/.installed-stamp $(VENV)/.installed-stamp-newest
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(LOCK),--constraint $(LOCK),--upgrade --upgrade-strategy eager) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The venv holds exactly the lock's versions (with LOCK= it lists what is newer than the lock), and pip check is clean.
check-lock: $(STAMP)
	$(PY) scripts/check-lock.py $(if $(LOCK),,--report )$(LOCK_FILE)
	$(PY) -m pip check

# Re-resolves the lock after a change to pyproject.toml, keeping every pin the ranges still allow (uv reads the old
# lock as its preferences); `make lock-upgrade` moves every pin to the newest allowed version, and
# `make lock LOCK_FLAGS="--upgrade-package NAME"` just one. Universal markers, Python 3.11 and newer, from PyPI.
lock: $(UV_STAMP)
	@mkdir -p $(dir $(LOCK_FILE))
	@if [ -f $(LOCK_FILE) ]; then cp $(LOCK_FILE) $(UV_VENV)/lock.txt; else rm -f $(UV_VENV)/lock.txt; fi
	$(UV_VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --no-config \
		--custom-compile-command "make lock" --quiet $(LOCK_FLAGS) -o $(UV_VENV)/lock.txt
	@if cmp -s $(UV_VENV)/lock.txt $(LOCK_FILE); then echo "$(LOCK_FILE) is up to date"; \
	else cp $(UV_VENV)/lock.txt $(LOCK_FILE); echo "$(LOCK_FILE) updated"; fi

lock-upgrade:
	$(MAKE) lock LOCK_FLAGS=--upgrade

# uv itself, pinned, in its own venv under .tools/ (gitignored).
$(UV_STAMP):
	rm -rf $(UV_VENV)
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	touch $@

demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/mloop demo --dir $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest

# Builds the image with podman (no Docker engine needed), runs it on 127.0.0.1 and calls /health and /v1/predict.
test-container: $(STAMP)
	bash scripts/container-setup.sh >/dev/null
	MLOOP_CONTAINER_TESTS=1 $(PY) -m pytest tests/container

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(MAKE) lint-deploy

# Deployment files: Dockerfile, workflows, Helm chart, Terraform (tools pinned in .tools/ by scripts/deploy-tools.sh).
lint-deploy:
	bash scripts/deploy-tools.sh
	.tools/bin/hadolint deploy/docker/Dockerfile
	.tools/bin/actionlint .github/workflows/*.yml
	.tools/bin/helm lint --strict deploy/helm/mloop
	.tools/bin/helm lint --strict deploy/helm/mloop -f deploy/helm/mloop/values-production.yaml
	PATH="$(CURDIR)/.tools/bin:$$PATH" .tools/bin/checkov --config-file deploy/helm/mloop/.checkov.yaml \
		-d deploy/helm/mloop --framework helm
	.tools/bin/checkov -d deploy/terraform --framework terraform --skip-download --compact --quiet

format: $(STAMP)
	$(VENV)/bin/ruff format $(CODE)
	$(VENV)/bin/ruff check --fix $(CODE)

bench: $(STAMP)
	@set -e; found=0; for f in bench/*.py; do [ -e "$$f" ] || continue; found=1; $(PY) "$$f" --quick; done; \
	[ $$found = 1 ] || echo "no benchmarks yet"

mlflow: $(STAMP)
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --backend-store-uri sqlite:///$(DEMO_DIR)/.mloop/mlflow.db

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
