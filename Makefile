# Crossroads. `make serve` and `make test` set themselves up on a fresh machine.
# Two stamps in one .venv: $(RUNTIME) holds what serving needs (requirements/runtime.txt and
# crossroads itself, installed by uv); $(DEV) adds the test toolchain, the SDKs and the optional
# extras (requirements/dev.txt, installed by pip: it takes torch from this machine's local file).
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
DEV     := $(VENV)/.dev
PIP     := $(BIN)/python -m pip --quiet --disable-pip-version-check
UV      := $(BIN)/uv pip install --quiet --python $(BIN)/python

.PHONY: setup serve test lint types unit bench clean

setup: $(DEV)

$(RUNTIME): pyproject.toml requirements/runtime.txt requirements/bootstrap.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements/bootstrap.txt
	$(UV) --compile-bytecode -r requirements/runtime.txt
	$(UV) --no-deps -e .
	@touch $@

$(DEV): $(RUNTIME) requirements/dev.txt
	$(PIP) install -r requirements/dev.txt
	@touch $@

serve: $(RUNTIME)
	$(BIN)/crossroads serve $(ARGS)

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(DEV)
	$(BIN)/mypy

unit: $(DEV)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint types unit

bench: $(DEV)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache bench/.work
