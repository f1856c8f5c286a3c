# `make demo` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned together (PyPI torchvision fails to import beside the CPU torch 2.13.0);
# this pair lies on the machines' disk, so pip installs it in about a minute.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

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
