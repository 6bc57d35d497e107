"""`keyturn --help` on the core alone: the first thing a newcomer types works on any install.

`make run` installs the 'serve' extra and no other; `pip install keyturn` installs none.
Every command is listed and every command's help answers on either; a command whose extra
is missing says, in one line, what to install (exit 2), never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keyturn._extras import EXTRAS
from keyturn.cli import COMMANDS, main
from tests.cli.command_tree import command_paths

OPTIONAL = sorted({module for modules in EXTRAS.values() for module in modules})


@pytest.fixture(scope="module")
def core_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which no extra's module can be imported (as after `pip install
    keyturn`)."""
    site = tmp_path_factory.mktemp("core-only")
    blocked = "".join(f"sys.modules[{m!r}] = None\n" for m in OPTIONAL)
    (site / "sitecustomize.py").write_text(f"import sys\n{blocked}")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    return {**environ, "PYTHONPATH": str(site), "NO_COLOR": "1", "COLUMNS": "100"}


def keyturn(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keyturn", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=60)


@pytest.mark.parametrize("args", [["--help"], []], ids=["keyturn --help", "keyturn"])
def test_keyturn_help_lists_every_command_on_the_core(
    core_only: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    done = keyturn(core_only, tmp_path, *args)
    assert done.returncode == 0, done.stderr
    listing = done.stdout.split("\nCommands:\n", 1)[1]
    assert sorted(line.split()[0] for line in listing.splitlines() if line.strip()) == sorted(
        COMMANDS
    )
    assert "doctor" in listing and "pip install 'keyturn[doctor]'" in listing


PATHS = [p for p in command_paths(main) if p]


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_each_commands_help_on_the_core_is_its_help_or_what_to_install(
    core_only: dict[str, str], tmp_path: Path, path: tuple[str, ...]
) -> None:
    done = keyturn(core_only, tmp_path, *path, "--help")
    if done.returncode == 0:
        assert f"keyturn {' '.join(path)} [OPTIONS]" in done.stdout.splitlines()[0], done.stdout
        return
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "pip install 'keyturn[" in lines[0]
    assert list(tmp_path.iterdir()) == []
