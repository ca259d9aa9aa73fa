# Every target installs into the project's own virtual environment first,
# so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run app lint test bench bench-record clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/riskpool run scenarios/shijiazhuang_score_loan.toml

# The page for policy designers at http://localhost:8765 (Ctrl-C stops it).
app: $(STAMP)
	$(BIN)/riskpool app

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/latest.json

# The same, and the summary kept in the tracked benchmarks/RESULTS.md (make bench writes latest.md).
bench-record: $(STAMP)
	RISKPOOL_BENCH_RESULTS=benchmarks/RESULTS.md $(BIN)/python -m pytest benchmarks --benchmark-only \
		--benchmark-json=benchmarks/latest.json

clean:
	rm -rf $(VENV) build *.egg-info
