# Two entry points on a fresh machine; each makes the virtual environment it needs.
#   make run   - keyturn serve on 127.0.0.1:8080 with the embedded SQLite store (./keyturn.db);
#                on a new database it prints the root key once. Installs keyturn alone.
#   make test  - lint (ruff, mypy), then the whole test suite (PostgreSQL and Redis are
#                started if needed), and meanwhile the core suite on the other supported
#                Pythons (noxfile.py). Installs keyturn with its development tools.
PYTHON ?= python3
# The Pythons besides $(PYTHON) that the core suite runs on (nox sessions; see noxfile.py).
OTHER_PYTHONS ?= core-3.12 core-3.13
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench clean

# keyturn and what serving needs (the serve extra), nothing more. pip is quiet, so say
# what the minute or two of silence is.
$(VENV)/.serve: pyproject.toml
	@echo "installing keyturn and its serve extra into $(VENV) (a minute or two, once)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[serve]'
	touch $@

# keyturn with the test, lint and benchmark tools (the extras named "dev").
$(VENV)/.dev: pyproject.toml
	@echo "installing keyturn and its development tools into $(VENV) (a few minutes, once)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(BIN)/keyturn: $(VENV)/.dev

run: $(VENV)/.serve
	$(BIN)/keyturn serve --db sqlite:///keyturn.db

# nox runs in the background: it mostly waits on installs and subprocesses, so the whole
# suite keeps the cores; its output follows the suite's, then one line for both.
# The suite starts keyturn as a process hundreds of times (the CLI, serve, doctor): its
# modules are compiled once first, so that a shell with PYTHONDONTWRITEBYTECODE set does not
# make each of those processes compile them again (a third of a CLI command's start).
# Four workers on any machine: most tests wait on servers and processes, not the CPU.
test: lint
	./scripts/services.sh
	$(BIN)/python -m compileall -q src
	@$(BIN)/nox -s $(OTHER_PYTHONS) > .nox-core.log 2>&1 & pythons=$$!; \
	$(BIN)/python -m pytest -n 4 -q; suite=$$?; \
	wait $$pythons; core=$$?; \
	echo "--- the core suite on the other Pythons ($(OTHER_PYTHONS)):"; cat .nox-core.log; \
	echo "whole suite: exit $$suite; core suite on $(OTHER_PYTHONS): exit $$core"; \
	test $$suite -eq 0 && test $$core -eq 0

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench noxfile.py
	$(BIN)/mypy src

bench: $(VENV)/.dev
	$(BIN)/python bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
