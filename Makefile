# `make demo` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch, pinned so that pip never pulls a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0

.PHONY: demo test lint install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/capbuild demo --out demo-out

install-dev: $(VENV)/.installed-dev

test: $(VENV)/.installed-dev
	$(BIN)/ruff check capbuild tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check capbuild tests benchmarks
	$(BIN)/ruff format --check capbuild tests benchmarks

clean:
	rm -rf $(VENV) demo-out .pytest_cache
