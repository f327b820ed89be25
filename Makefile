# Two commands do all set-up: `make up` and `make test`. Each creates .venv on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint install bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,onnx,cluster,test,lint]'
	@touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/tasveer up $(ARGS)

# Three workers by default (pytest-xdist; each test file stays on one worker, in order): most tests
# wait on Label Studio, a backend or a browser, so on two cores two workers left a fifth of the CPU
# idle (2026-12-05, this machine: 14:55 with two, 13:36 with three). `make test TEST_WORKERS=0` runs
# them one after the other.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Static checks, all configured in pyproject.toml: lint rules, formatting, types, import contracts.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
