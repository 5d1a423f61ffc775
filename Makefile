# make demo: the whole loop on the Ames data.  make test: the test suite.  Both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-project
CODE := src tests $(wildcard bench)

.PHONY: install demo test test-unit lint format bench mlflow clean

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

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

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
