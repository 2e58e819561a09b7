# musicgen: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# torch pinned: the version the tests and the shipped models were made with.
# A GPU user installs their own torch build into the venv first; pip keeps it.
TORCH ?= torch==2.13.0
DEMO_DIR ?= work/demo

.PHONY: install system-deps test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed system-deps

system-deps:
	@bash scripts/install-system-deps.sh

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check musicgen tests benchmarks scripts
	$(VENV)/bin/ruff format --check musicgen tests benchmarks scripts

demo: install
	$(PY) scripts/demo.py --out $(DEMO_DIR)

bench: install
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/train.py
	$(PY) benchmarks/generate.py

clean:
	rm -rf work .pytest_cache
