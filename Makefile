# make demo: the whole loop on the Ames data.  make test: the test suite.  Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-project
CODE := src tests $(wildcard bench)

.PHONY: install demo test test-unit test-container lint lint-deploy format bench mlflow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

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
