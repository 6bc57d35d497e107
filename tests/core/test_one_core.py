"""One core under every face: the failures issue 12 found, each held by a test.

- One error hierarchy: a validation failure, a key's state, a missing key, Redis down and
  the database down are five different classes under one base, and each maps to its own
  HTTP status (503 with ``Retry-After`` for an outage) and exit code.
- The verifier owns every decision: the manager's fast path for cached keys answers with
  the verifier's own decision object, refuses as the verifier refuses, and computes no
  policy of its own (no checksum length, no scope rule, no key-state order).
- The admin rules appear once: only the admin layer writes keys to a store, and the
  defaults (90 days, 24 hours of grace) are written in the admin layer alone.
- One name per concept: no two classes of keyturn share a name.
- No function above cyclomatic complexity 20 (ruff's C901, configured in pyproject.toml).

The face-level agreements (pepper, prefixes, check is never a use, missing databases,
busy ports) are held through the real ``keyturn`` command in ``tests/cli``; import
cycles and the async twins in ``test_structure.py``.
"""

from __future__ import annotations

import ast
import itertools
import socket
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

import keyturn
from keyturn import (
    Conflict,
    InvalidValue,
    KeyCache,
    KeyManager,
    KeyNotFound,
    KeyturnError,
    NotFound,
    NotPermitted,
    Unavailable,
    render_error,
)
from keyturn.errors import LimiterUnavailable, ScopeNotHeld
from keyturn.store import open_store
from keyturn.verifier import Candidate, Decision

PACKAGE = Path(keyturn.__file__).parent
ROOT = PACKAGE.parents[1]
KINDS = (InvalidValue, NotFound, NotPermitted, Conflict, Unavailable)
FACES = {"cli", "service", "ui", "integrations"}


def asgi(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- one error hierarchy ------------------------------------------------------------------


def test_each_kind_of_failure_is_its_own_class(manager: KeyManager) -> None:
    with pytest.raises(InvalidValue) as invalid:
        manager.create_key("x", scopes=["no spaces allowed"])
    issued = manager.create_key("x")
    manager.revoke(issued.record.id)
    with pytest.raises(Conflict) as conflict:
        manager.enable(issued.record.id)
    with pytest.raises(KeyNotFound) as missing:
        manager.get("key_0000000000000000")
    with pytest.raises(Unavailable) as database_down:
        open_store(f"postgresql://keyturn@127.0.0.1:{closed_port()}/keyturn")
    redis_down = KeyManager(manager.store, limiter=f"redis://127.0.0.1:{closed_port()}/0")
    metered = manager.create_key("m", rate_limits=["5/minute"])
    with pytest.raises(LimiterUnavailable) as limiter_down:
        redis_down.verify([("x-api-key", metered.key)])

    raised = [invalid, conflict, missing, database_down, limiter_down]
    assert [next(k for k in KINDS if isinstance(r.value, k)) for r in raised] == [
        InvalidValue,
        Conflict,
        NotFound,
        Unavailable,
        Unavailable,
    ]
    for failure in raised:
        assert isinstance(failure.value, KeyturnError)
        assert "\n" not in str(failure.value)
    assert database_down.value.code != limiter_down.value.code


def test_the_kinds_do_not_overlap() -> None:
    for one, other in itertools.permutations(KINDS, 2):
        assert not issubclass(one, other), (one, other)
    assert issubclass(InvalidValue, ValueError)  # code that caught ValueError keeps working


@pytest.mark.parametrize(
    ("error", "status", "exit_code"),
    [
        (InvalidValue("expires_at is in the past", "expires_at"), 422, 2),
        (KeyNotFound("key_0000000000000000"), 404, 2),
        (NotPermitted("a key cannot outlive the key that makes it"), 403, 1),
        (ScopeNotHeld("the key lacks keys:write", ("keys:write",)), 403, 1),
        (Conflict("key is revoked"), 409, 1),
        (Unavailable("cannot read database", retry_after=7), 503, 3),
        (LimiterUnavailable("cannot count rate limits"), 503, 3),
    ],
)
def test_each_class_maps_to_one_status_and_exit_code(
    error: KeyturnError, status: int, exit_code: int
) -> None:
    answer = render_error(error)
    assert (answer.status, error.exit_code) == (status, exit_code)
    headers = dict(answer.headers)
    if isinstance(error, Unavailable):
        assert headers["retry-after"] == str(error.retry_after)
    else:
        assert "retry-after" not in headers
    assert answer.body["status"] == status
    assert error.message in answer.body["detail"]


# -- the verifier owns every decision ----------------------------------------------------


def test_the_fast_path_answers_with_the_verifiers_own_decision(db_url: str) -> None:
    with KeyManager(db_url, cache=KeyCache(ttl=60)) as manager:
        issued = manager.create_key("x", scopes=["read", "write"])
        first = manager.verify_asgi(asgi(issued.key), scopes=["read"])  # a miss: the store
        fast = manager.verify_asgi(asgi(issued.key), scopes=["read"])  # a hit: the fast path
        assert fast.ok and fast is first
        found = manager.verifier.inspect_key(issued.key)
        assert isinstance(found, Candidate)
        cached = manager.cache.get(found.key_hash)
        decided = manager.verifier.decide(found, cached, None, ("read",))  # type: ignore[arg-type]
        assert decided is fast
        # A scope the key lacks is refused as the verifier refuses it, cached or not.
        lacking = manager.verify_asgi(asgi(issued.key), scopes=["admin"])
        general = manager.verifier.decide(found, cached, None, ("admin",))  # type: ignore[arg-type]
        assert (lacking.code, lacking.detail) == (general.code, general.detail)


def test_a_cached_key_is_refused_in_the_state_tables_order(db_url: str) -> None:
    """A key cached while usable is refused once its time is up, even within the cache's
    lifetime, and with the answer the verifier gives for the stored record."""
    with KeyManager(db_url, cache=KeyCache(ttl=60)) as manager:
        short = manager.create_key("short", expires_in=timedelta(seconds=2))
        assert manager.verify_asgi(asgi(short.key)).ok
        time.sleep(2.1)
        refused = manager.verify_asgi(asgi(short.key))
        found = manager.verifier.inspect_key(short.key)
        assert isinstance(found, Candidate)
        stored = manager.store.find_by_hash(found.key_hash)
        expected = manager.verifier.decide(found, stored)
        assert (refused.code, refused.detail) == (expected.code, expected.detail)
        assert refused.code == "key_expired"


def test_a_forged_key_never_reaches_the_fast_accept(manager: KeyManager) -> None:
    """Shape and checksum are the verifier's: a value one character off is refused by its
    checksum on the fast path as on the general one."""
    issued = manager.create_key("x")
    forged = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    fast = manager.verify_asgi(asgi(forged))
    general = manager.verify([("authorization", f"Bearer {forged}")])
    assert isinstance(fast, Decision)
    assert fast.code == general.code == "checksum_mismatch"


def _module_tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text())


def test_the_manager_decides_nothing_itself() -> None:
    """The manager imports no policy the verifier owns: no checksum, no scope rule, no
    state table. What it needs of them it asks the verifier."""
    owned = {"CHECKSUM_LENGTH", "checksum", "missing_scopes", "states", "refusal", "parse_key"}
    for node in ast.walk(_module_tree("manager")):
        if isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names} | {node.module or ""}
            assert not names & (owned | {"keyturn._states", "keyturn.scopes"}), names
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            assert name not in owned - {"checksum"}, name


# -- the admin rules appear once ---------------------------------------------------------

KEY_WRITES = {"create", "create_many", "update", "change", "rotate"}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        found[".".join(relative.parts).removesuffix(".__init__")] = ast.parse(path.read_text())
    return found


def _receiver(node: ast.expr) -> str:
    """The name a method is called on: ``store`` in ``self.store.create(...)``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def test_only_the_admin_layer_writes_keys() -> None:
    """Every change to a key goes through ``KeyAdmin``: no face, and no other module of the
    core, calls a store's write methods."""
    writers = set()
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in KEY_WRITES
                and "store" in _receiver(node.func.value)
            ):
                writers.add(module)
    assert writers == {"keyturn.admin"}


def test_the_defaults_are_written_once() -> None:
    """90 days and 24 hours are ``admin.DEFAULT_LIFETIME`` and ``admin.DEFAULT_GRACE``;
    the faces and the manager (where issue 12 found them written again) show and use them
    by importing those, never by writing the numbers again."""
    written = defaultdict(list)
    for module, tree in _modules().items():
        if module.partition(".")[2].split(".")[0] not in {"admin", "manager", *FACES}:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "timedelta"
            ):
                spelled = {kw.arg: ast.unparse(kw.value) for kw in node.keywords}
                if spelled in ({"days": "90"}, {"hours": "24"}):
                    written[module].append(spelled)
    assert dict(written) == {"keyturn.admin": [{"days": "90"}, {"hours": "24"}]}


# -- one name per concept ------------------------------------------------------------------

# The framework integrations each give their framework its own conventional name.
PER_FRAMEWORK = {"KeyturnMiddleware"}


def test_no_two_classes_share_a_name() -> None:
    defined = defaultdict(list)
    for module, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name not in PER_FRAMEWORK:
                defined[node.name].append(module)
    assert {name: where for name, where in defined.items() if len(where) > 1} == {}


# -- the house: no function above complexity 20 ------------------------------------------


def test_no_function_is_above_complexity_20() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "C901",
            "--output-format=concise",
            "src",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "pyproject.toml").read_text()
    assert "max-complexity = 20" in text
