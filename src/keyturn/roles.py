"""Roles: a named set of scopes that keys hold by name.

A key's effective scopes are its own and those of every role it holds
(``KeyRecord.granted``); each face that checks scopes reads those (the verifier for
``/auth``, the verify API, the middleware and the integrations; the admin layer's grant
rules). Every read of a key brings its roles' scopes in the same statement
(``store.sql.role_scopes``), so a verification never costs a read of its own for them, and
a cached key with roles is checked as fast as one without.

Changing a role changes every key holding it within the propagation bound: a role change
is announced as a change to every key (``store.base.EVERY_KEY``), so on PostgreSQL each
instance drops its cache at once, and elsewhere each key is read again, with its roles'
scopes, when its cache entry runs out (``cache_ttl``). Role changes are rare acts of an
administrator, so dropping every cached key costs one store read per busy key, once.

The rules, here and nowhere else (the admin API, the dashboard and the CLI translate):

- reading roles needs ``roles:read``; defining, changing or deleting one ``roles:write``;
- a role is a grant to every key holding it, so an actor defines or changes a role only
  within the scopes it holds itself, only a role whose scopes (before the change) it holds
  too, and only a role that no working key beyond its power holds (a key with a scope the
  actor lacks: the change would widen or narrow that key, which the actor could not
  change itself): ``Actor.ensure_manages`` for each holder, as an update would;
- a role that working keys still hold is not deleted (``RoleInUse``, 409, naming how many):
  deleting it would silently take scopes away from them, and a role created later under
  the same name would silently hand its scopes to them. Take the role off the keys first.

Every change is audited (``role.update``, ``role.delete``) in the same transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from keyturn.actor import Actor
from keyturn.admin import checked_scopes, checked_text
from keyturn.cache import KeyCache
from keyturn.errors import InvalidValue, RoleNotFound, ScopeNotHeld
from keyturn.scopes import validate_roles
from keyturn.store.base import KeyFilter, KeyStore

ROLES_READ: Final = "roles:read"
ROLES_WRITE: Final = "roles:write"
_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class Role:
    """A role as stored; ``holders``: how many keys that are not revoked hold it."""

    name: str
    scopes: frozenset[str]
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    holders: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": sorted(self.scopes),
            "description": self.description,
            "keys": self.holders,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def checked_role_name(name: object) -> str:
    """One role name, as ``validate_roles`` checks them (``InvalidValue`` on field
    ``name``)."""
    try:
        (checked,) = validate_roles([name])  # type: ignore[list-item]
    except InvalidValue as exc:
        raise InvalidValue(exc.message, "name") from None
    return checked


class RoleAdmin:
    """Define, change, read and delete roles, for an actor."""

    def __init__(self, store: KeyStore, cache: KeyCache) -> None:
        self.store = store
        self.cache = cache

    def put(
        self, actor: Actor, name: str, scopes: Any, description: str | None = None
    ) -> Role:
        """Create the role or replace its scopes and description."""
        actor.require(ROLES_WRITE)
        role = Role(
            checked_role_name(name),
            checked_scopes(scopes),
            checked_text(description, "description", optional=True),
        )
        actor.ensure_grants(role.scopes)
        self._ensure_manages_holders(actor, role.name)

        def check(current: Role | None) -> None:
            if current is not None:
                actor.ensure_grants(current.scopes)

        self.store.put_role(role, check, actor.name)
        self.cache.clear()  # every key holding it changed; the store announced it to others
        return self.get(actor, role.name)

    def _ensure_manages_holders(self, actor: Actor, name: str) -> None:
        """``actor`` could change each working key holding role ``name`` itself
        (``ScopeNotHeld`` naming the first that it could not). The holders are read
        before the change's transaction, so a key given the role in between is not
        checked: only an actor holding all of the role's scopes can have given it."""
        if actor.owner is None and "*" in actor.scopes:
            return  # it manages every key
        after: str | None = None
        while True:
            page = self.store.list_keys(KeyFilter(role=name), limit=_PAGE, after=after)
            for holder in page:
                if holder.revoked_at is None:
                    try:
                        actor.ensure_manages(holder)
                    except ScopeNotHeld as exc:
                        raise ScopeNotHeld(
                            f"role {name} is held by key {holder.id}, which holds scopes "
                            f"that {actor.name} does not: {', '.join(exc.missing)}; a role "
                            "changes every key holding it, so take the role off that key "
                            "first, or make the change with a key holding those scopes",
                            exc.missing,
                        ) from None
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def get(self, actor: Actor, name: str) -> Role:
        actor.require(ROLES_READ)
        found = self.store.get_role(name)
        if found is None:
            raise RoleNotFound(name)
        return found

    def list_roles(self, actor: Actor) -> list[Role]:
        actor.require(ROLES_READ)
        return self.store.list_roles()

    def delete(self, actor: Actor, name: str) -> Role:
        """Delete a role no working key holds (``RoleInUse`` otherwise)."""
        actor.require(ROLES_WRITE)
        deleted = self.store.delete_role(name, lambda r: actor.ensure_grants(r.scopes), actor.name)
        self.cache.clear()
        return deleted


class AsyncRoleAdmin:
    """``RoleAdmin`` for ``async`` code: each operation in a worker thread."""

    def __init__(self, admin: RoleAdmin) -> None:
        self.sync = admin

    async def put(
        self, actor: Actor, name: str, scopes: Any, description: str | None = None
    ) -> Role:
        return await asyncio.to_thread(self.sync.put, actor, name, scopes, description)

    async def get(self, actor: Actor, name: str) -> Role:
        return await asyncio.to_thread(self.sync.get, actor, name)

    async def list_roles(self, actor: Actor) -> list[Role]:
        return await asyncio.to_thread(self.sync.list_roles, actor)

    async def delete(self, actor: Actor, name: str) -> Role:
        return await asyncio.to_thread(self.sync.delete, actor, name)
