"""What people install, tested as they install it: the sdist and wheel built from this tree,
installed into new virtual environments outside the repository.

Each is made once per test run and shared by every pytest-xdist worker (a file lock decides
who builds). The environments install from PyPI as a user's would (pip's cache makes the
second run quick); nothing of the development environment leaks in: no ``PYTHONPATH``, no
``--system-site-packages``, and each command runs in a folder outside the repository.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import venv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600


@dataclass(frozen=True)
class Artifacts:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Env:
    """A virtual environment with keyturn installed from the wheel, and a folder to work in."""

    root: Path
    work: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def environ(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KEYTURN_"))}
        keep.pop("VIRTUAL_ENV", None)
        return {**keep, "PATH": f"{self.bin}{os.pathsep}{keep.get('PATH', '')}",
                "NO_COLOR": "1", **extra}

    def run(self, *args: str, timeout: float = 120, **extra_env: str
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=self.work, env=self.environ(**extra_env), capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def keyturn(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "keyturn"), *args, **extra_env)

    def python(self, code: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bin / "python"), "-c", code, **extra_env)

    def packages(self) -> set[str]:
        """Distributions installed beside keyturn (pip and setuptools are not counted)."""
        listed = self.python("import importlib.metadata as m\n"
                             "for d in m.distributions(): print(d.metadata['Name'])")
        names = {re.sub(r"[-_.]+", "-", n).lower() for n in listed.stdout.split()}
        return names - {"pip", "setuptools", "keyturn"}


def _shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this run sees (the run's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def once(folder: Path, make: Callable[[Path], None]) -> Path:
    """``folder``, made by ``make`` by whichever worker comes first; the others wait."""
    with _locked(folder):
        done = folder / ".done"
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            make(folder)
            done.touch()
    return folder


def _check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _build(folder: Path) -> None:
    # --no-isolation: the build backend comes from the development environment, so the
    # build itself needs no network; what is built is the same.
    _check(subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(folder), str(ROOT)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
    ))


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    folder = once(_shared(tmp_path_factory) / "dist", _build)
    (wheel,) = folder.glob("keyturn-*.whl")
    (sdist,) = folder.glob("keyturn-*.tar.gz")
    return Artifacts(wheel, sdist)


def _environment(extras: Sequence[str], wheel: Path) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        # Without pip of its own (ensurepip takes most of a minute on a loaded machine): this
        # environment's pip installs into it, resolving as in any new environment.
        venv.create(folder / "venv", with_pip=False)
        (folder / "work").mkdir()
        spec = f"keyturn[{','.join(extras)}] @ {wheel.as_uri()}" if extras else str(wheel)
        _check(subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(folder / "venv" / "bin" / "python"),
             "install", "--quiet", "--disable-pip-version-check", spec],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT, cwd=folder / "work",
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        ))
    return make


def installed(tmp_path_factory: pytest.TempPathFactory, artifacts: Artifacts,
              *extras: str) -> Env:
    name = "env-" + ("-".join(extras) or "core")
    folder = once(_shared(tmp_path_factory) / name, _environment(extras, artifacts.wheel))
    return Env(folder / "venv", folder / "work")


@pytest.fixture(scope="session")
def core(tmp_path_factory: pytest.TempPathFactory, artifacts: Artifacts) -> Env:
    """``pip install keyturn``, from the wheel: the core alone."""
    return installed(tmp_path_factory, artifacts)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, artifacts: Artifacts) -> Env:
    """``pip install 'keyturn[serve]'``, from the wheel."""
    return installed(tmp_path_factory, artifacts, "serve")
