"""The stores through their protocol: what a user of the library relies on.

Tests taking ``manager`` or ``db_url`` run against SQLite and PostgreSQL alike (see
``tests/core/conftest.py``); the few about one engine's files or URLs say so in their name.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyturn import KeyManager
from keyturn.errors import InvalidValue, KeyNotFound
from keyturn.store import KeyFilter, open_store
from keyturn.store.migrate import migrations


def test_a_key_survives_reopening_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with KeyManager(url) as m:
        issued = m.create_key("ci", scopes=["read"], owner="ada", metadata={"team": "x"})
    with KeyManager(url) as m:
        assert m.verify_key(issued.key).code == "valid"
        record = m.get(issued.record.id)
        assert record.metadata == {"team": "x"} and record.owner == "ada"
    raw = (
        (tmp_path / "k.db").read_bytes() + (tmp_path / "k.db-wal").read_bytes()
        if (tmp_path / "k.db-wal").exists()
        else (tmp_path / "k.db").read_bytes()
    )
    assert issued.key.encode() not in raw
    assert issued.key[8:38].encode() not in raw  # not even the random body


def raw_rows(url: str, query: str) -> list[tuple[object, ...]]:
    """What the database itself holds, read past keyturn."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return list(conn.execute(query))
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute(query))


def test_only_the_hash_and_display_parts_are_stored(db_url: str) -> None:
    with KeyManager(db_url) as m:
        issued = m.create_key("ci", scopes=["read"], metadata={"team": "x"})
        m.revoke(issued.record.id)
    dump = repr([raw_rows(db_url, f"SELECT * FROM {table}") for table in ("keys", "audit")])
    assert issued.record.key_hash in dump
    assert issued.key not in dump
    assert issued.key[8:38] not in dump


def test_migrations_are_versioned_and_applied_once_on_every_engine(db_url: str) -> None:
    first = open_store(db_url)
    version = first.schema_version()  # type: ignore[attr-defined]
    first.close()
    second = open_store(db_url)
    assert second.schema_version() == version >= 2  # type: ignore[attr-defined]
    second.close()
    rows = raw_rows(db_url, "SELECT version FROM schema_migrations ORDER BY version")
    shipped = [m.version for m in migrations("sqlite" if "sqlite" in db_url else "postgresql")]
    assert [v for (v,) in rows] == shipped and shipped[-1] == version


def test_migrations_are_versioned_and_applied_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    first = open_store(url)
    version = first.schema_version()  # type: ignore[attr-defined]
    first.close()
    second = open_store(url)
    assert second.schema_version() == version >= 1  # type: ignore[attr-defined]
    second.close()
    rows = sqlite3.connect(tmp_path / "m.db").execute(
        "SELECT version FROM schema_migrations ORDER BY version"
    )
    shipped = [m.version for m in migrations("sqlite")]
    assert [v for (v,) in rows] == shipped and shipped[-1] == version


def raw_execute(url: str, *statements: str) -> None:
    """Change the database past keyturn (as an older version of it left the schema)."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            for statement in statements:
                conn.execute(statement)
        return
    import psycopg

    with psycopg.connect(url) as conn:
        for statement in statements:
            conn.execute(statement)


def test_keys_rotated_before_allowances_were_shared_get_their_chains(db_url: str) -> None:
    """Migration 0003 names each key's allowance after the first key of its rotation chain,
    also for chains rotated before it (their keys then share what is left)."""
    with KeyManager(db_url) as m:
        first = m.create_key("chain", credits=4)
        second = m.rotate(first.record.id)
        third = m.rotate(second.record.id)
        alone = m.create_key("alone", credits=4)
    raw_execute(
        db_url,
        "DROP INDEX keys_allowance",
        "ALTER TABLE keys DROP COLUMN allowance_id",
        "DELETE FROM schema_migrations WHERE version = 3",
    )
    with KeyManager(db_url) as m:
        rows = dict(raw_rows(db_url, "SELECT id, allowance_id FROM keys"))
        chain = {first.record.id, second.record.id, third.record.id}
        assert {rows[i] for i in chain} == {first.record.id}
        assert rows[alone.record.id] == alone.record.id
        spent = [m.verify_key(k).code for k in (first.key, second.key, third.key) * 2]
        assert spent.count("valid") == 4, spent


def test_default_expiry_is_90_days_and_never_is_allowed(manager: KeyManager) -> None:
    issued = manager.create_key("a")
    record = issued.record
    assert record.expires_at is not None
    assert abs((record.expires_at - record.created_at) - timedelta(days=90)) < timedelta(seconds=1)
    assert manager.create_key("b", expires_in=None).record.expires_at is None


def test_every_change_is_audited_with_actor(manager: KeyManager) -> None:
    key_id = manager.create_key("a", actor="alice").record.id
    manager.disable(key_id, actor="bob")
    manager.enable(key_id, actor="bob")
    manager.update(key_id, name="renamed", scopes=["x"], actor="carol")
    manager.rotate(key_id, grace=timedelta(hours=1), actor="dave")
    manager.revoke(key_id, actor="erin")
    events = manager.audit(key_id=key_id)
    assert [(e.action, e.actor) for e in reversed(events)] == [
        ("key.create", "alice"),
        ("key.disable", "bob"),
        ("key.enable", "bob"),
        ("key.update", "carol"),
        ("key.rotate", "dave"),
        ("key.revoke", "erin"),
    ]
    assert events[-1].details["name"] == "a"
    assert manager.audit(actor="bob", limit=1)[0].action == "key.enable"


def test_list_filters_and_pages(manager: KeyManager) -> None:
    ids = [
        manager.create_key(f"svc-{i}", owner="ada" if i % 2 else "bob").record.id for i in range(7)
    ]
    manager.revoke(ids[0])
    manager.disable(ids[1])
    soon = manager.create_key("soon", expires_in=timedelta(days=3)).record.id
    assert {r.id for r in manager.list_keys(KeyFilter(status="revoked"))} == {ids[0]}
    assert {r.id for r in manager.list_keys(KeyFilter(status="disabled"))} == {ids[1]}
    assert len(manager.list_keys(KeyFilter(owner="ada"))) == 3
    assert [r.name for r in manager.list_keys(KeyFilter(search="svc-4"))] == ["svc-4"]
    assert [r.name for r in manager.list_keys(KeyFilter(search="SVC-4"))] == ["svc-4"]
    assert manager.list_keys(KeyFilter(search="svc_4")) == []  # "_" is no wildcard
    assert manager.list_keys(KeyFilter(search="100%")) == []
    expiring = manager.list_keys(KeyFilter(expiring_before=datetime.now(UTC) + timedelta(days=7)))
    assert [r.id for r in expiring] == [soon]
    pages, after = [], None
    while True:
        page = manager.list_keys(limit=3, after=after)
        pages.append([r.id for r in page])
        if len(page) < 3:
            break
        after = page[-1].id
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == 8


@pytest.mark.parametrize("scope", ["two words", 'quo"te', "back\\slash", "", "é"])
def test_scopes_must_be_rfc6750_tokens(manager: KeyManager, scope: str) -> None:
    with pytest.raises(ValueError, match="invalid scope"):
        manager.create_key("x", scopes=["read", scope])
    key_id = manager.create_key("y", scopes=["read"]).record.id
    with pytest.raises(ValueError, match="invalid scope"):
        manager.update(key_id, scopes=[scope])
    assert manager.get(key_id).scopes == {"read"}


def test_unknown_ids_and_bad_urls_are_clear_errors(manager: KeyManager, tmp_path: Path) -> None:
    with pytest.raises(KeyNotFound, match="no key with id 'key_nope'"):
        manager.revoke("key_nope")
    with pytest.raises(InvalidValue, match="unsupported database URL"):
        open_store("mysql://x")
    with pytest.raises(InvalidValue, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


@pytest.mark.parametrize("where", ["a-directory.db", "/proc/keyturn.db"])
def test_an_unusable_database_path_is_an_invalid_value(tmp_path: Path, where: str) -> None:
    # Tests run as root here, so file modes cannot make a file unwritable; a directory in
    # the file's place and a folder nobody may create files in can.
    path = tmp_path / where
    if where.endswith("directory.db"):
        path.mkdir()
    with pytest.raises(InvalidValue, match=r"cannot (open|prepare|write)"):
        KeyManager(f"sqlite:///{path}")


def test_in_memory_store_is_shared_across_threads() -> None:
    import threading

    m = KeyManager("sqlite:///:memory:")
    issued = m.create_key("x")
    results = []
    thread = threading.Thread(target=lambda: results.append(m.verify_key(issued.key).code))
    thread.start()
    thread.join()
    assert results == ["valid"]
    m.close()


def test_a_database_url_scheme_is_read_in_any_case(db_url: str) -> None:
    """Schemes are case-insensitive (RFC 3986): ``SQLITE:///...`` is the same file as
    ``sqlite:///...`` (it was read as a file named ``SQLITE:``...), and
    ``POSTGRESQL://...`` the same database (psycopg refused it)."""
    scheme, _, rest = db_url.partition("://")
    with KeyManager(db_url) as manager:
        issued = manager.create_key("any-case")
    with KeyManager(f"{scheme.upper()}://{rest}") as shouted:
        assert shouted.verify_key(issued.key).code == "valid"


def test_a_key_read_by_its_hash_is_the_key_as_stored_to_the_microsecond(db_url: str) -> None:
    """The cache-miss read (by hash) is written apart from the other reads of a key (SQLite
    packs it); a key with every field set reads the same through it as through ``get``,
    times to the microsecond, text with quotes, backslashes and control characters included."""
    from keyturn import Actor, KeyCache
    from keyturn._owners import OwnerLimits

    operator = Actor.operator("test")
    with KeyManager(db_url, cache=KeyCache(maxsize=0)) as m:
        m.roles.put(operator, "reader", ["read", "list"])
        m.owners.put(operator, "acme", OwnerLimits(("50/minute",), credits=10))
        issued = m.create_key(
            'a "quoted" name with \\ and é',
            scopes=["read", "orders:write"],
            expires_in=timedelta(days=3, microseconds=123457),
            owner="acme",
            metadata={"team": "x\n\x01", "n": [1, 2.5, None, True], "ü": {"k": ""}},
            rate_limits=["10/second"],
            credits=5,
            refill="daily",
            refill_amount=5,
            allowed_ips=["10.0.0.0/8", "2001:db8::/32"],
            roles=["reader"],
        )
        assert m.verify_key(issued.key, ip="10.1.2.3").code == "valid"
        m.usage.flush()  # its last-used time, a float with microseconds
        successor = m.rotate(issued.record.id, quiet=timedelta(hours=1))
        for key in (issued, successor):
            stored = m.get(key.record.id)
            found = m.store.find_by_hash(key.record.key_hash)
            assert found == stored
            assert found is not None and found.public() == stored.public()
            assert (found.role_scopes, found.owner_rate_limits, found.owner_credits) == (
                frozenset({"read", "list"}), ("50/minute",), True,
            )
        old = m.store.find_by_hash(issued.record.key_hash)
        assert old is not None and old.last_used_at is not None
        assert old.grace_quiet_seconds == 3600 and old.grace_max is not None
        assert m.store.find_by_hash("0" * 64) is None
