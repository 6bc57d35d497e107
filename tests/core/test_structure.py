"""The house rules that keep keyturn one core under several faces, checked on the source.

- No import cycle between keyturn's subpackages, and the core (the top-level modules) never
  imports a face, except the composition modules made for that (``keyturn.app`` composes
  the service and the dashboard; ``keyturn.__main__`` runs the CLI).
- ``keyturn.__all__`` is deliberate: this test pins it, so a change to the public surface is
  a visible decision.
- The async manager is written out: every public method of the sync one has a typed
  coroutine twin, and nothing is forwarded by ``__getattr__``.
"""

from __future__ import annotations

import ast
import inspect
from collections import defaultdict
from importlib import resources
from pathlib import Path

import keyturn
from keyturn import AsyncKeyManager, KeyManager
from keyturn.admin import AsyncKeyAdmin, KeyAdmin

PACKAGE = Path(keyturn.__file__).parent
FACES = {"cli", "service", "ui", "integrations", "doctor", "scan"}
COMPOSERS = {"app", "__main__"}


def _unit(module: str) -> str:
    """The subpackage a module belongs to, or ``core`` for a top-level module."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "core"


def _imports() -> dict[tuple[str, str], set[str]]:
    """(unit, module) -> the keyturn modules it imports, at any depth of the file."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found[_unit(module), module] |= {n for n in names if n.startswith("keyturn.")}
    return found


def test_no_import_cycle_between_subpackages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for (unit, _), targets in _imports().items():
        if unit == "core":
            continue
        graph[unit] |= {_unit(t) for t in targets} - {unit, "core"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph[start]
        )

    cycles = sorted(unit for unit in list(graph) if reaches(unit, unit, {unit}))
    assert cycles == [], f"import cycles through {cycles}: {dict(graph)}"


def test_the_service_and_the_dashboard_do_not_import_each_other() -> None:
    for (unit, module), targets in _imports().items():
        other = {"service": "ui", "ui": "service"}.get(unit)
        if other:
            assert not {t for t in targets if _unit(t) == other}, module


def test_the_core_imports_no_face() -> None:
    for (unit, module), targets in _imports().items():
        if unit != "core" or module.rpartition(".")[2] in COMPOSERS:
            continue
        faces = {t for t in targets if _unit(t) in FACES}
        assert not faces, f"{module} imports {sorted(faces)}"


def test_the_public_surface_is_pinned() -> None:
    assert sorted(keyturn.__all__) == [
        "Actor",
        "Allowance",
        "AsyncKeyAdmin",
        "AsyncKeyManager",
        "CATALOGUE",
        "Candidate",
        "Conflict",
        "CredentialReader",
        "Decision",
        "HttpAnswer",
        "InvalidValue",
        "IssuedKey",
        "KeyAdmin",
        "KeyCache",
        "KeyChange",
        "KeyDefect",
        "KeyFilter",
        "KeyManager",
        "KeyNotFound",
        "KeyProblem",
        "KeyRecord",
        "KeyStore",
        "KeyturnError",
        "NewKey",
        "NotFound",
        "NotPermitted",
        "Outcome",
        "ParsedKey",
        "Presented",
        "Rejection",
        "ScopeNotHeld",
        "Settings",
        "UNSET",
        "Unavailable",
        "Verifier",
        "__version__",
        "build_manager",
        "challenge",
        "generate_key",
        "hash_key",
        "load_settings",
        "lookup",
        "mask",
        "missing_scopes",
        "open_store",
        "parse_key",
        "render",
        "render_error",
    ]
    for name in keyturn.__all__:
        assert hasattr(keyturn, name), name


def _public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def test_async_twins_are_explicit_and_typed() -> None:
    for sync, twin, extra in (
        (KeyManager, AsyncKeyManager, {"meter", "account", "close"}),
        (KeyAdmin, AsyncKeyAdmin, {"create_many", "draft"}),
    ):
        assert "__getattr__" not in vars(twin)
        missing = set(_public_methods(sync)) - set(_public_methods(twin)) - extra
        assert not missing, f"{twin.__name__} lacks {sorted(missing)}"
        for name, method in _public_methods(twin).items():
            if name in _public_methods(sync):
                assert inspect.iscoroutinefunction(method), f"{twin.__name__}.{name}"
                hints = inspect.signature(method)  # type: ignore[arg-type]
                assert hints.return_annotation is not inspect.Signature.empty, name
                assert all(
                    p.annotation is not inspect.Parameter.empty
                    for p in hints.parameters.values()
                    if p.name != "self"
                ), name


def test_the_package_ships_its_type_information() -> None:
    assert resources.files("keyturn").joinpath("py.typed").is_file()
