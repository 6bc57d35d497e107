"""``keyturn roles`` and ``keyturn keys --role``, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

from keyturn import KeyManager
from tests.cli.test_check_cli import create, run


def test_roles_through_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    KeyManager(db).close()
    put = run("roles", "put", "clerk", "--scope", "orders:read", "--description", "desk",
              "--format", "json", db=db, check=True)  # fmt: skip
    assert json.loads(put.stdout) == {**json.loads(put.stdout), "name": "clerk",
                                      "scopes": ["orders:read"], "keys": 0}  # fmt: skip
    key = create(db, "--name", "k", "--scope", "profile", "--role", "clerk")
    assert key["roles"] == ["clerk"] and key["effective_scopes"] == ["orders:read", "profile"]
    with KeyManager(db) as manager:
        assert manager.verify_key(key["key"], scopes=["orders:read"]).ok
    listed = json.loads(run("roles", "list", "--format", "json", db=db, check=True).stdout)
    assert [(r["name"], r["keys"]) for r in listed["roles"]] == [("clerk", 1)]
    assert "orders:read" in run("roles", "show", "clerk", db=db, check=True).stdout
    held = json.loads(run("keys", "list", "--role", "clerk", "--format", "json", db=db,
                          check=True).stdout)  # fmt: skip
    assert [k["id"] for k in held["keys"]] == [key["id"]]
    # Held: refused, exit 1, one line naming the count.
    refused = run("roles", "delete", "clerk", db=db)
    assert refused.returncode == 1 and "held by 1 key" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    changed = json.loads(run("keys", "update", key["id"], "--no-roles", "--format", "json",
                             db=db, check=True).stdout)  # fmt: skip
    assert changed["roles"] == [] and changed["effective_scopes"] == ["profile"]
    assert "deleted role clerk" in run("roles", "delete", "clerk", db=db, check=True).stdout


def test_bad_role_input_is_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    KeyManager(db).close()
    unknown = run("keys", "create", "--name", "k", "--role", "ghost", db=db)
    assert unknown.returncode == 2 and "'ghost'" in unknown.stderr
    missing = run("roles", "show", "nobody", db=db)
    assert missing.returncode == 2 and "no role 'nobody'" in missing.stderr
    bad = run("roles", "put", "has space", db=db)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_check_takes_a_permission_expression(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    KeyManager(db).close()
    run("roles", "put", "writer", "--scope", "orders:write", db=db, check=True)
    reader = create(db, "--name", "r", "--scope", "orders:read")["key"]
    writer = create(db, "--name", "w", "--scope", "orders:read", "--role", "writer")["key"]
    expression = "orders:read and (orders:write or admin)"
    refused = run("check", "-H", f"Authorization: Bearer {reader}", "--permissions", expression,
                  "--format", "json", db=db)  # fmt: skip
    assert refused.returncode == 1
    shown = json.loads(refused.stdout)
    assert shown["code"] == "insufficient_scope" and shown["missing"] == "orders:write or admin"
    text = run("check", "-H", f"Authorization: Bearer {reader}", "--permissions", "admin", db=db)
    assert "missing: admin" in text.stdout
    accepted = run("check", "-H", f"Authorization: Bearer {writer}", "--permissions", expression,
                   db=db)  # fmt: skip
    assert accepted.returncode == 0, accepted.stdout
    bad = run("check", "-H", f"Authorization: Bearer {reader}", "--permissions", "(a", db=db)
    assert bad.returncode == 2 and "never closed" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
