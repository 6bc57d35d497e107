"""Files keyturn creates hold secrets or their hashes: owner-only, whatever the umask, and
the root key can go to a file instead of a terminal or a log collector."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import KEY_RE, ServeProcess, run_cli


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Children started inside run under ``mask``."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_files(tmp: Path) -> list[Path]:
    return [tmp / name for name in ("keyturn.db", "keyturn.db-wal", "keyturn.db-shm")]


@pytest.mark.parametrize("mask", [0o022, 0o000, 0o277])
def test_serve_creates_the_database_and_its_wal_and_shm_owner_only(
    tmp_path: Path, mask: int
) -> None:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    with umask(mask):
        server = ServeProcess("--db", db, cwd=tmp_path, env={"KEYTURN_ACCESS_LOG": "false"})
    with server:
        root = KEY_RE.findall(server.stderr)[0]
        made = httpx.post(f"{server.url}/v1/keys", json={"name": "w", "scopes": ["api"]},
                          headers={"authorization": f"Bearer {root}"})
        assert made.status_code == 201  # a write: the WAL and its index exist now
        for path in database_files(tmp_path):
            assert path.exists() and mode(path) == 0o600, (path.name, oct(mode(path)))
        assert server.stop() == 0


def test_init_creates_the_database_owner_only(tmp_path: Path) -> None:
    with umask(0o002):
        result = run_cli("init", "--db", f"sqlite:///{tmp_path / 'keyturn.db'}")
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "keyturn.db") == 0o600


def test_a_mode_set_on_an_existing_database_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "keyturn.db"
    assert run_cli("init", "--db", f"sqlite:///{db}").returncode == 0
    db.chmod(0o640)  # an administrator's choice: a backup group may read it
    with umask(0o022):
        result = run_cli("keys", "create", "--name", "x", "--db", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert mode(db) == 0o640


# -- the root key to a file ----------------------------------------------------------------


def test_init_output_writes_the_root_key_to_a_private_file(tmp_path: Path) -> None:
    out = tmp_path / "root.key"
    with umask(0o000):
        result = run_cli("init", "--db", f"sqlite:///{tmp_path / 'k.db'}", "--output", str(out))
    assert result.returncode == 0, result.stderr
    key = out.read_text().strip()
    assert KEY_RE.fullmatch(key)
    assert mode(out) == 0o600
    assert key not in result.stdout + result.stderr  # not on the terminal as well
    assert "root.key" in result.stdout


def test_init_output_json(tmp_path: Path) -> None:
    out = tmp_path / "root.key"
    result = run_cli("init", "--db", f"sqlite:///{tmp_path / 'k.db'}", "--output", str(out),
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    assert said["created"] is True and said["key_file"] == str(out) and "key" not in said


def test_init_output_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "root.key"
    out.write_text("precious\n")
    db = tmp_path / "k.db"
    result = run_cli("init", "--db", f"sqlite:///{db}", "--output", str(out))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "never overwrites" in result.stderr
    assert out.read_text() == "precious\n"
    assert not db.exists()  # refused before anything was made


def test_init_output_on_a_database_with_keys_makes_no_file(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    assert run_cli("init", "--db", db).returncode == 0
    out = tmp_path / "root.key"
    result = run_cli("init", "--db", db, "--output", str(out))
    assert result.returncode == 0
    assert not out.exists()
    assert "already holds" in result.stderr


def test_serve_root_key_file(tmp_path: Path) -> None:
    out = tmp_path / "root.key"
    db = f"sqlite:///{tmp_path / 'k.db'}"
    with ServeProcess("--db", db, "--root-key-file", str(out), cwd=tmp_path) as server:
        key = out.read_text().strip()
        assert mode(out) == 0o600
        assert key not in server.stderr and not KEY_RE.search(server.stderr)
        assert "root.key" in server.stderr
        answer = httpx.get(f"{server.url}/auth", headers={"authorization": f"Bearer {key}"})
        assert answer.status_code == 204
        assert server.stop() == 0
    # Started again, with keys in the database: no new file, no refusal.
    out.unlink()
    with ServeProcess("--db", db, "--root-key-file", str(out), cwd=tmp_path) as again:
        assert not out.exists()
        assert again.stop() == 0


def test_serve_root_key_file_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "root.key"
    out.write_text("precious\n")
    result = run_cli("serve", "--port", "0", "--db", f"sqlite:///{tmp_path / 'k.db'}",
                     "--root-key-file", str(out))
    assert result.returncode == 2
    assert "never overwrites" in result.stderr
    assert out.read_text() == "precious\n"
    assert not KEY_RE.search(result.stderr + result.stdout)
