# costguard — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export COSTGUARD_PORT ?= 8000

.PHONY: run test lint typecheck pytest install clean bench-ingest bench-evaluate bench-console bench-scrape

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## make run: migrate the embedded SQLite database, apply budgets/, load demo usage, serve on 127.0.0.1:8000
run: install
	$(BIN)/costguard migrate
	$(BIN)/costguard budgets apply budgets
	$(BIN)/costguard demo
	$(BIN)/costguard serve

lint: install
	$(BIN)/ruff check costguard tests bench migrations

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test: lint, type check and the whole suite against SQLite and a real PostgreSQL
test: lint typecheck pytest

bench-ingest: install
	$(BIN)/python bench/ingest.py $(if $(N),--records $(N))

bench-evaluate: install
	$(BIN)/python bench/evaluate.py

bench-console: install
	$(BIN)/python bench/console.py

bench-scrape: install
	$(BIN)/python bench/scrape.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache costguard.db costguard.db-*
