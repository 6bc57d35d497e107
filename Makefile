# Two entry points on a fresh machine; each makes the virtual environment it needs.
#   make run   - keyturn serve on 127.0.0.1:8080 with the embedded SQLite store (./keyturn.db);
#                on a new database it prints the root key once
#   make test  - the whole test suite (PostgreSQL and Redis are started if needed)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/keyturn: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/keyturn
	$(BIN)/keyturn serve --db sqlite:///keyturn.db

test: $(BIN)/keyturn
	./scripts/services.sh
	$(BIN)/python -m pytest -n auto -q

lint: $(BIN)/keyturn
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: $(BIN)/keyturn
	$(BIN)/python bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
