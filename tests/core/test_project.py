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
    assert "pip install --quiet -e '.[serve]'" in commands
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


def test_scanning_installs_no_server_stack() -> None:
    """What `pip install keyturn` (and so the pre-commit hook) installs: no web server, no
    web framework, no database driver; those are the 'serve' and 'postgres' extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert not names & {"uvicorn", "fastapi", "jinja2", "prometheus-client", "psycopg"}
    extras = project["optional-dependencies"]
    assert {"uvicorn", "fastapi"} <= {re.split(r"[\[<>=!~ ]", d)[0] for d in extras["serve"]}


def test_the_readmes_pre_commit_snippet_works_as_written(tmp_path: Path) -> None:
    """The README's `repo: local` hook, pasted into a repository, blocks a commit that adds
    a keyturn key (with keyturn installed, as the README says; pre-commit installs nothing)."""
    import os
    import sys

    from keyturn import generate_key
    from tests.scan.repo import GIT_ENV, Repo

    readme = (ROOT / "README.md").read_text()
    snippet = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "repo: local" in b)
    repo = Repo(tmp_path / "project")
    repo.write(".pre-commit-config.yaml", snippet)
    repo.commit("config")
    repo.write("settings.py", f'API_KEY = "{generate_key()}"\n')
    repo.git("add", "settings.py")
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        **GIT_ENV,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "NO_COLOR": "1",
    }
    blocked = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run"],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "keyturn scan" in blocked.stdout and "Failed" in blocked.stdout
    assert "settings.py" in blocked.stdout


def test_ci_runs_the_core_suite_on_every_other_python() -> None:
    """`make test` (and so CI) runs the whole suite on one Python and the core suite, through
    nox, on each other Python the package declares."""
    commands = dry_run("test")
    declared = re.findall(
        r"Programming Language :: Python :: (3\.\d+)", (ROOT / "pyproject.toml").read_text()
    )
    assert declared == ["3.11", "3.12", "3.13"]
    noxfile = (ROOT / "noxfile.py").read_text()
    assert f"PYTHONS = {declared!r}".replace("'", '"') in noxfile
    assert "nox -s core-3.12 core-3.13" in commands
    assert commands.index("nox -s") < commands.index("-m pytest -n")
