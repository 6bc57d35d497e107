"""Project hygiene a newcomer relies on: what `make run` installs, that CI lints, the
licence and the changelog."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> str:
    """The commands ``make TARGET`` would run from scratch (nothing is executed)."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_make_run_installs_only_what_serving_needs() -> None:
    commands = dry_run("run")
    assert "pip install --quiet -e ." in commands
    assert "[dev]" not in commands
    assert "keyturn serve" in commands


def test_make_test_lints_before_testing() -> None:
    commands = dry_run("test").splitlines()
    ruff = next(i for i, c in enumerate(commands) if "ruff check" in c)
    mypy = next(i for i, c in enumerate(commands) if "mypy src" in c)
    pytest = next(i for i, c in enumerate(commands) if "pytest" in c)
    assert ruff < pytest and mypy < pytest


def test_ci_runs_the_readmes_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_the_licence_is_the_one_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_changelog_keeps_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in text
    assert "## [Unreleased]" in text
    sections = set(re.findall(r"^### (\w+)", text, re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
