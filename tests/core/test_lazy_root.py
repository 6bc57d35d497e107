"""``import keyturn`` is cheap, and ``keyturn scan`` loads the scanner, not the service.

Every pre-commit run starts a fresh ``keyturn scan``: importing the manager, the store and
the verifier for it cost about 0.2 s a commit. The package root loads its public names on
first use, and the command loads only what scanning needs. Each check runs in a fresh
interpreter, where ``sys.modules`` says what was really imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import keyturn

ROOT = Path(keyturn.__file__)
# The library behind the service: none of it is needed to import keyturn or to scan.
SERVICE = ("keyturn.manager", "keyturn.admin", "keyturn.store", "keyturn.verifier",
           "keyturn.compose", "keyturn.config", "keyturn.service", "keyturn.app",
           "keyturn.ui", "keyturn.cli.settings", "asyncio", "sqlite3", "httpx", "starlette",
           "fastapi")


def _loaded(program: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", program + "\nimport json, sys\n"
                           "print(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def _service(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == s or m.startswith(s + ".") for s in SERVICE)]


def test_import_keyturn_loads_nothing_else_of_keyturn() -> None:
    modules = _loaded("import keyturn\nassert keyturn.__version__")
    assert [m for m in modules if m.startswith("keyturn")] == ["keyturn"]
    assert _service(modules) == []


def test_a_scan_through_the_command_loads_no_service(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hello')\n")
    modules = _loaded(
        "import sys\nfrom keyturn.cli import main\n"
        f"sys.argv = ['keyturn', 'scan', '--jobs', '1', {str(tmp_path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
    )
    assert "keyturn.scan.scanner" in modules  # it did scan
    assert _service(modules) == []


def test_every_public_name_imports_and_is_its_home_modules_object() -> None:
    done = subprocess.run([sys.executable, "-c", (
        "import importlib, keyturn\n"
        "from keyturn import *\n"
        "names = {n: globals()[n] for n in keyturn.__all__}\n"
        "assert set(keyturn.__all__) <= set(dir(keyturn))\n"
        "for name, value in names.items():\n"
        "    home = keyturn._HOMES.get(name)\n"
        "    if home:\n"
        "        assert value is getattr(importlib.import_module(home), name), name\n"
        "try:\n    keyturn.NoSuchName\nexcept AttributeError as exc:\n    print(exc)\n"
    )], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "module 'keyturn' has no attribute 'NoSuchName'"


def test_the_lazy_table_says_what_the_type_checking_imports_say() -> None:
    """``_HOMES`` (for the interpreter) and the ``TYPE_CHECKING`` imports (for mypy) name the
    same names from the same modules, and together with ``__version__`` are ``__all__``."""
    tree = ast.parse(ROOT.read_text())
    (guard,) = [n for n in tree.body if isinstance(n, ast.If)
                and ast.unparse(n.test) == "TYPE_CHECKING"]
    declared = {alias.name: node.module for node in guard.body
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert declared == keyturn._HOMES
    assert sorted([*declared, "__version__"]) == sorted(keyturn.__all__)
