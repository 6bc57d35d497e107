"""keyturn on each Python it supports (3.11, 3.12, 3.13).

    nox -s core            # the core suite on every Python found
    nox -s core-3.13       # ... on one
    nox -s full            # the whole suite (what `make test` runs in .venv)

The core suite is the part of the tests that says whether keyturn works on a Python: the
built wheel installed alone in a new environment (tests/packaging/test_core.py: key format,
verifier with a rate limit, SQLite store, ASGI middleware, key commands, every module's
import, each missing extra's one line) and the key format's and verifier's own tests. CI
runs the whole suite on the first Python and this on the others (`make test`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]
# Small on purpose: CI runs it on two Pythons beside the whole suite, on two cores.
CORE_SUITE = [
    "tests/packaging/test_core.py",
    "tests/core/test_keys.py",
    "tests/core/test_verifier.py",
]
# The core suite's tools; tests/packaging builds the wheel with the backend installed here
# and installs it with pip, as a user would.
TEST_TOOLS = ["pip", "pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100", "build>=1.2",
              "hatchling>=1.24", "twine>=5.0"]

nox.options.default_venv_backend = "uv|venv"  # uv creates and fills an environment in seconds
nox.options.sessions = ["core"]
nox.options.error_on_missing_interpreters = True


def _put_pythons_on_path() -> None:
    """Where pyenv manages the Pythons, its shim answers ``python3.12`` only for the selected
    version: put each installed version's own folder on PATH, so that nox finds them all."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return
    named = subprocess.run([pyenv, "root"], capture_output=True, text=True)  # noqa: S603
    root = Path(named.stdout.strip())
    folders = []
    for version in PYTHONS:
        found = sorted((root / "versions").glob(f"{version}.*/bin"))
        folders += [str(f) for f in found[-1:]]
    os.environ["PATH"] = os.pathsep.join([*folders, os.environ.get("PATH", "")])


_put_pythons_on_path()


@nox.session(python=PYTHONS)
def core(session: nox.Session) -> None:
    """The core suite, against keyturn installed with every extra a server uses."""
    session.install(".[all]", *TEST_TOOLS)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE_SUITE,
                *session.posargs)


@nox.session(python=PYTHONS[0])
def full(session: nox.Session) -> None:
    """The whole suite, with the development tools."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-n", "auto", "-q", *session.posargs)
