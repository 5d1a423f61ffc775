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
CODE := src tests $(wildcard bench) scripts

.PHONY: install demo test test-unit test-container lint lint-deploy audit sbom format bench bench-check bench-tools
.PHONY: mlflow clean
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
	$(MAKE) audit
	$(MAKE) lint-deploy

# Known vulnerabilities in the locked set, from PyPI's advisory data for each pinned version (the pins that apply
# to Linux and this Python, 3.11 like the image's). --strict: a pin that cannot be looked up fails the audit, so a
# network failure never passes as "no known vulnerabilities". Where PyPI's per-version JSON cannot be reached at
# all (the development and CI machines reach PyPI's package index but get 404 for that JSON), the audit is skipped
# with a warning that says so; it runs wherever the data can be had. An advisory that does not apply is ignored
# only by its ID with the reason beside it: AUDIT_IGNORE += --ignore-vuln ID  # why
AUDIT_PROBE := https://pypi.org/pypi/pip/24.0/json
AUDIT_IGNORE :=
audit: $(STAMP)
	@if ! $(PY) -c "import urllib.request; urllib.request.urlopen('$(AUDIT_PROBE)', timeout=30)" 2>/dev/null; then \
		echo "audit: SKIPPED, PyPI's vulnerability data ($(AUDIT_PROBE)) cannot be reached from here:" \
			"no pin was checked" >&2; \
	else set -x; $(VENV)/bin/pip-audit --requirement $(LOCK_FILE) --no-deps --disable-pip --strict \
		--progress-spinner off $(AUDIT_IGNORE); fi

# The image's SBOM (CycloneDX 1.6 JSON): what deploy/docker/Dockerfile installs, mloop's dependencies and those of
# the extras in IMAGE_EXTRAS (its EXTRAS, comma-separated; postgres by default), resolved by uv for Linux and
# Python 3.11 at the versions of the lock, with their hashes, and mloop itself as the SBOM's subject. Checked by
# scripts/check-sbom.py: CycloneDX's JSON schema, and every component at its locked version.
IMAGE_EXTRAS ?= postgres
SBOM ?= dist/sbom.cdx.json
comma := ,
sbom: $(STAMP) $(UV_STAMP)
	@mkdir -p $(dir $(SBOM))
	$(UV_VENV)/bin/uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(IMAGE_EXTRAS)),--extra $(e)) \
		--constraint $(LOCK_FILE) --python-platform linux --python-version 3.11 --no-config --generate-hashes \
		--no-header --no-annotate --quiet -o $(SBOM:.cdx.json=)-requirements.txt
	PYTHONWARNINGS="ignore:The Component this BOM is describing" $(VENV)/bin/cyclonedx-py requirements \
		--pyproject pyproject.toml --mc-type application --sv 1.6 --of JSON --output-reproducible --validate \
		-o $(SBOM) $(SBOM:.cdx.json=)-requirements.txt
	$(PY) scripts/check-sbom.py $(SBOM) $(SBOM:.cdx.json=)-requirements.txt --extras "$(IMAGE_EXTRAS)"

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

# Every benchmark with --quick, but the soak (20 minutes even quick: run `bench/soak.py --quick` on its own).
bench: $(STAMP)
	@set -e; found=0; for f in bench/*.py; do [ -e "$$f" ] || continue; [ "$$f" = bench/soak.py ] && continue; \
	found=1; $(PY) "$$f" --quick; done; [ $$found = 1 ] || echo "no benchmarks yet"

# Performance as a gate: every benchmark with --quick, each ratio of mloop against its peer in the same run compared
# with its goal (scripts/bench-check.py, docs/benchmarks.md, "The gate"); exits non-zero naming each figure that fell
# short. Needs wrk and Redis on 127.0.0.1:6379 (skipped without them, an error on CI) and Evidently in its own venv.
bench-check: $(STAMP) bench-tools
	$(PY) scripts/bench-check.py

# Evidently, bench/drift.py's peer, in its own venv under .tools/ (it cannot be imported with pandas 3).
EVIDENTLY_VERSION := 0.7.23
EVIDENTLY_VENV := .tools/evidently
EVIDENTLY_STAMP := $(EVIDENTLY_VENV)/.evidently-$(EVIDENTLY_VERSION)
bench-tools: $(EVIDENTLY_STAMP)
$(EVIDENTLY_STAMP):
	rm -rf $(EVIDENTLY_VENV)
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install --quiet "evidently==$(EVIDENTLY_VERSION)" "pandas<3" pyarrow
	touch $@

mlflow: $(STAMP)
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --backend-store-uri sqlite:///$(DEMO_DIR)/.mloop/mlflow.db

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
