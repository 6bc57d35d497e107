"""`keyturn --help` on the core alone: the first thing a newcomer types works on any install.

`make run` installs the 'serve' extra and no other; `pip install keyturn` installs none.
Every command is listed and every command's help shows its usage on either; a command whose
extra is missing says what to install there (`keyturn doctor --help` once printed only the
install line), and when run, in one line (exit 2), never a traceback.
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
    names = [line.split()[0] for line in listing.splitlines() if line[2:3].strip()]
    assert sorted(names) == sorted(COMMANDS)
    assert "Not installed: pip install 'keyturn[doctor]'." in " ".join(listing.split())


PATHS = [p for p in command_paths(main) if p]


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_each_commands_help_on_the_core_is_its_usage(
    core_only: dict[str, str], tmp_path: Path, path: tuple[str, ...]
) -> None:
    done = keyturn(core_only, tmp_path, *path, "--help")
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert f"keyturn {' '.join(path)} [OPTIONS]" in done.stdout.splitlines()[0], done.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("command", "extra"), [("doctor", "doctor"), ("serve", "serve")])
def test_a_command_without_its_extra_shows_its_options_and_what_to_install(
    core_only: dict[str, str], tmp_path: Path, command: str, extra: str
) -> None:
    helped = keyturn(core_only, tmp_path, command, "--help")
    assert helped.returncode == 0 and helped.stderr == "", helped.stderr
    assert "\nOptions:\n" in helped.stdout
    assert f"pip install 'keyturn[{extra}]'" in (x.strip() for x in helped.stdout.splitlines())
    run = keyturn(core_only, tmp_path, command)
    assert run.returncode == 2, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: keyturn {command} needs keyturn's {extra!r} extra (")
    assert lines[0].endswith(f"is not installed): pip install 'keyturn[{extra}]'")
    assert list(tmp_path.iterdir()) == []


def test_with_the_extra_the_help_does_not_ask_for_it(tmp_path: Path) -> None:
    environ = {**os.environ, "NO_COLOR": "1"}
    done = keyturn(environ, tmp_path, "doctor", "--help")
    assert done.returncode == 0 and "--try-variants" in done.stdout
    assert "pip install" not in done.stdout


def test_the_doctors_default_age_in_the_help_is_the_doctors() -> None:
    from keyturn.cli.doctor import DEFAULT_MAX_AGE_DAYS, doctor
    from keyturn.doctor.validity import DEFAULT_MAX_AGE_DAYS as LIBRARY_DEFAULT

    assert DEFAULT_MAX_AGE_DAYS == LIBRARY_DEFAULT
    option = next(p for p in doctor.params if p.name == "max_age")
    assert option.default == str(LIBRARY_DEFAULT)
