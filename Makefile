# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
CHECKED    := triage tests benchmarks

.PHONY: demo test lint typecheck unit venv clean

demo: $(RUN_STAMP)
	$(BIN)/triage demo

test: $(TEST_STAMP)
	scripts/ensure-test-deps
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# Unit tests only: no Dovecot needed.
unit: $(TEST_STAMP)
	$(BIN)/pytest -m "not imap"

venv: $(BIN)/python

$(BIN)/python:
	scripts/ensure-python "$(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
