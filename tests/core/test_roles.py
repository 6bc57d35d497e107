"""Roles through the library, on both engines: effective scopes, grant rules, deletion,
and a change to a role reaching keys that are cached."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from keyturn import Actor, AsyncKeyManager, InvalidValue, KeyManager, NotFound, ScopeNotHeld
from keyturn.errors import Conflict, RoleInUse, UnknownRole
from keyturn.store.base import KeyFilter

OPERATOR = Actor.operator("test")


def asgi(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


@pytest.fixture
def engine(store_url: str) -> Iterator[KeyManager]:
    with KeyManager(store_url) as m:
        yield m


def test_effective_scopes_are_own_and_roles(engine: KeyManager) -> None:
    engine.roles.put(OPERATOR, "orders-reader", ["orders:read"], "reads orders")
    engine.roles.put(OPERATOR, "billing", ["billing:read", "billing:write"])
    issued = engine.create_key("k", scopes=["profile"], roles=["orders-reader", "billing"])
    record = issued.record
    assert record.roles == ("billing", "orders-reader")
    assert record.granted == {"profile", "orders:read", "billing:read", "billing:write"}
    shown = engine.get(record.id).public()
    assert shown["roles"] == ["billing", "orders-reader"]
    assert shown["scopes"] == ["profile"]
    assert shown["effective_scopes"] == ["billing:read", "billing:write", "orders:read", "profile"]
    for scopes in (["orders:read"], ["billing:write", "profile"]):
        assert engine.verify_key(issued.key, scopes=scopes).ok
        assert engine.verify_asgi(asgi(issued.key), scopes=scopes).ok
    refused = engine.verify_key(issued.key, scopes=["orders:write"])
    assert refused.code == "insufficient_scope" and "orders:write" in refused.detail
    # Listed by role.
    assert [r.id for r in engine.list_keys(KeyFilter(role="billing"))] == [record.id]
    assert engine.list_keys(KeyFilter(role="bill")) == []


def test_a_role_change_reaches_a_cached_key(engine: KeyManager) -> None:
    engine.roles.put(OPERATOR, "reader", ["orders:read"])
    key = engine.create_key("k", roles=["reader"]).key
    assert engine.verify_asgi(asgi(key), scopes=["orders:read"]).ok  # cached now
    assert engine.verify_asgi(asgi(key), scopes=["orders:write"]).code == "insufficient_scope"
    engine.roles.put(OPERATOR, "reader", ["orders:write"])
    assert engine.verify_asgi(asgi(key), scopes=["orders:write"]).ok
    assert engine.verify_asgi(asgi(key), scopes=["orders:read"]).code == "insufficient_scope"
    events = engine.audit(action="role.update")
    assert [e.details["scopes"] for e in events] == [["orders:write"], ["orders:read"]]


def test_unknown_roles_are_refused_by_name(engine: KeyManager) -> None:
    engine.roles.put(OPERATOR, "known", ["a"])
    with pytest.raises(UnknownRole) as caught:
        engine.create_key("k", roles=["known", "ghost", "phantom"])
    assert caught.value.status == 422 and caught.value.field == "roles"
    assert "'ghost'" in str(caught.value) and "'phantom'" in str(caught.value)
    record = engine.create_key("k").record
    with pytest.raises(UnknownRole, match="'ghost'"):
        engine.update(record.id, roles=["ghost"])
    for bad in (["has space"], ["-dash"], ["x" * 65], [""], "known"):
        with pytest.raises(InvalidValue):
            engine.create_key("k", roles=bad)


def test_a_held_role_is_not_deleted(engine: KeyManager) -> None:
    engine.roles.put(OPERATOR, "r", ["a"])
    keys = [engine.create_key(f"k{i}", roles=["r"]).record for i in range(2)]
    with pytest.raises(RoleInUse) as caught:
        engine.roles.delete(OPERATOR, "r")
    assert isinstance(caught.value, Conflict) and "2 keys" in str(caught.value)
    assert engine.roles.get(OPERATOR, "r").holders == 2
    engine.update(keys[0].id, roles=[])
    engine.revoke(keys[1].id)  # a revoked key holds nothing that matters
    deleted = engine.roles.delete(OPERATOR, "r")
    assert deleted.name == "r"
    with pytest.raises(NotFound):
        engine.roles.get(OPERATOR, "r")
    with pytest.raises(NotFound):
        engine.roles.delete(OPERATOR, "r")
    assert [e.action for e in engine.audit(action="role.delete")] == ["role.delete"]


def test_grant_rules_hold_for_roles(engine: KeyManager) -> None:
    engine.roles.put(OPERATOR, "admin", ["admin", "orders:write"])
    engine.roles.put(OPERATOR, "reader", ["orders:read"])
    actor_key = engine.create_key(
        "actor", scopes=["keys:write", "keys:read", "roles:write", "roles:read", "orders:read"]
    ).record
    actor = Actor.of_key(engine.store.find_by_hash(actor_key.key_hash))  # type: ignore[arg-type]
    # It may hand out a role within its scopes, not one beyond them.
    assert engine.admin.create(actor, _new("ok", roles=["reader"])).record.roles == ("reader",)
    with pytest.raises(ScopeNotHeld, match="admin"):
        engine.admin.create(actor, _new("no", roles=["admin"]))
    # It may not define a role beyond itself, nor change one that is.
    with pytest.raises(ScopeNotHeld):
        engine.roles.put(actor, "mine", ["orders:write"])
    with pytest.raises(ScopeNotHeld):
        engine.roles.put(actor, "admin", ["orders:read"])
    with pytest.raises(ScopeNotHeld):
        engine.roles.delete(actor, "admin")
    assert engine.roles.put(actor, "mine", ["orders:read"]).scopes == {"orders:read"}
    # A key whose role holds scopes the actor lacks is beyond it.
    strong = engine.create_key("strong", roles=["admin"]).record
    with pytest.raises(ScopeNotHeld, match="admin"):
        engine.admin.revoke(actor, strong.id)
    # Roles grant admin scopes too: a key acting through its role.
    engine.roles.put(OPERATOR, "operator", ["roles:read"])
    held = engine.create_key("via-role", roles=["operator"]).record
    via = Actor.of_key(engine.store.find_by_hash(held.key_hash))  # type: ignore[arg-type]
    assert [r.name for r in engine.roles.list_roles(via)] == ["admin", "mine", "operator", "reader"]
    with pytest.raises(ScopeNotHeld, match="roles:write"):
        engine.roles.put(via, "x", [])


def test_rotation_keeps_roles(engine: KeyManager) -> None:
    engine.roles.put(OPERATOR, "r", ["orders:read"])
    old = engine.create_key("k", roles=["r"]).record
    new = engine.rotate(old.id)
    assert new.record.roles == ("r",) and engine.verify_key(new.key, scopes=["orders:read"]).ok


def test_async_manager_carries_roles(store_url: str) -> None:
    async def run() -> None:
        manager = AsyncKeyManager(store_url)
        try:
            await manager.roles.put(OPERATOR, "r", ["x"])
            issued = await manager.create_key("k", roles=["r"])
            assert (await manager.verify_key(issued.key, scopes=["x"])).ok
            changed = await manager.update(issued.record.id, roles=[])
            assert changed.roles == () and changed.granted == frozenset()
            assert [r.name for r in await manager.roles.list_roles(OPERATOR)] == ["r"]
            assert (await manager.roles.delete(OPERATOR, "r")).name == "r"
        finally:
            await manager.aclose()

    asyncio.run(run())


def _new(name: str, roles: list[str]):  # type: ignore[no-untyped-def]
    from keyturn.admin import NewKey

    return NewKey(name, roles=roles)


def test_a_role_deleted_while_a_key_takes_it_never_dangles(engine: KeyManager) -> None:
    """A key written with a role and the role's deletion, at once: either the key holds a
    role that still exists, or the key was refused (unknown_role), or the deletion was
    (role_in_use); never a working key naming a deleted role."""
    import threading

    outcomes: list[str] = []
    for round_ in range(8):
        name = f"r{round_}"
        engine.roles.put(OPERATOR, name, ["x"])
        start = threading.Barrier(2)

        def create(name: str = name, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                engine.create_key("racer", roles=[name])
                outcomes.append("created")
            except UnknownRole:
                outcomes.append("refused")

        def delete(name: str = name, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                engine.roles.delete(OPERATOR, name)
                outcomes.append("deleted")
            except RoleInUse:
                outcomes.append("in use")

        threads = [threading.Thread(target=create), threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    existing = {r.name for r in engine.roles.list_roles(OPERATOR)}
    for record in engine.list_keys(KeyFilter(search="racer"), limit=100):
        assert set(record.roles) <= existing, (record.roles, existing, outcomes)
    assert outcomes.count("created") + outcomes.count("refused") == 8
