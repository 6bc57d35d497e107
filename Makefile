# Two entry points on a fresh machine; each makes the virtual environment it needs.
#   make run   - keyturn serve on 127.0.0.1:8080 with the embedded SQLite store (./keyturn.db);
#                on a new database it prints the root key once. Installs keyturn alone.
#   make test  - lint (ruff, mypy), then the whole test suite (PostgreSQL and Redis are
#                started if needed). Installs keyturn with its development tools.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench clean

# keyturn and what serving needs (the serve extra), nothing more.
$(VENV)/.serve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serve]'
	touch $@

# keyturn with the test, lint and benchmark tools (the extras named "dev").
$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(BIN)/keyturn: $(VENV)/.dev

run: $(VENV)/.serve
	$(BIN)/keyturn serve --db sqlite:///keyturn.db

test: lint
	./scripts/services.sh
	$(BIN)/python -m pytest -n auto -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: $(VENV)/.dev
	$(BIN)/python bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
