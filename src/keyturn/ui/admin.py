"""Who is using the dashboard: the admin key behind a session, re-checked on every request.

A session stores the key's id and hash, never the key. Each request reads the key's record
again and ends the session unless the hash still matches and the verifier would still
accept the key (not revoked, disabled, expired, or past a rotation's grace). Scopes are
read from that fresh record too, so narrowing an admin key narrows its open sessions.

What a page offers follows the same scopes as the admin API (``keys:read``,
``keys:write``, ``keys:verify``, ``audit:read``, ``roles:*``, ``webhooks:*``, ``*``),
checked with the same ``missing_scopes`` the verifier uses; what the admin may then do to
a key is the admin layer's to decide, with ``Admin.actor``.

Each page is also a use of the key, charged as the admin API charges a call (``charge``):
a session is no way around a metered key's rate limits and credits.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

from keyturn import _webhooks as webhooks
from keyturn import admin
from keyturn._owners import OWNERS_WRITE
from keyturn._verifications import READ_SCOPE as LOG_READ
from keyturn.actor import Actor
from keyturn.errors import KeyNotFound
from keyturn.manager import AsyncKeyManager
from keyturn.portal import KEYTURN_SCOPES, PORTAL_WRITE
from keyturn.record import KeyRecord
from keyturn.roles import ROLES_READ, ROLES_WRITE
from keyturn.scopes import missing_scopes
from keyturn.ui.sessions import Session, SessionStore
from keyturn.verifier import Decision

# Each of these lets a key sign in; each opens part of the dashboard: keyturn's own scopes
# (one list, which portal policies also refuse to hand out), but the portal's and the
# verification log's, which open no page by themselves.
DASHBOARD_SCOPES = tuple(s for s in KEYTURN_SCOPES if s not in (PORTAL_WRITE, LOG_READ))


def holds(record: KeyRecord, scope: str) -> bool:
    return not missing_scopes(record.granted, (scope,))


def may_sign_in(record: KeyRecord) -> bool:
    return any(holds(record, scope) for scope in DASHBOARD_SCOPES)


@dataclass(frozen=True, slots=True)
class Admin:
    session: Session
    key: KeyRecord

    def can(self, scope: str) -> bool:
        return holds(self.key, scope)

    @property
    def actor(self) -> Actor:
        """The signed-in key, acting within what it holds (``keyturn.actor``)."""
        return Actor.of_key(self.key)

    @property
    def can_read(self) -> bool:
        return self.can(admin.READ)

    @property
    def can_write(self) -> bool:
        return self.can(admin.WRITE)

    @property
    def can_verify(self) -> bool:
        return self.can(admin.VERIFY)

    @property
    def can_audit(self) -> bool:
        return self.can(admin.AUDIT)

    @property
    def can_read_webhooks(self) -> bool:
        return self.can(webhooks.READ)

    @property
    def can_write_webhooks(self) -> bool:
        return self.can(webhooks.WRITE)

    @property
    def can_write_owners(self) -> bool:
        return self.can(OWNERS_WRITE)

    @property
    def can_read_roles(self) -> bool:
        return self.can(ROLES_READ)

    @property
    def can_write_roles(self) -> bool:
        return self.can(ROLES_WRITE)


async def current_admin(
    sessions: SessionStore, manager: AsyncKeyManager, session: Session | None, client: str | None
) -> Admin | None:
    """The admin of a signed-in session whose key still stands, else ``None`` (and the
    session is ended if its key no longer stands). A key restricted by address stands only
    for a request whose ``client`` (as the verifier judges it) is on its list: a session
    cookie carried elsewhere is no way around the list."""
    if session is None or session.subject is None or session.proof is None:
        return None
    record: KeyRecord | None
    try:
        record = await manager.get(session.subject)
    except KeyNotFound:
        record = None
    if (
        record is None
        or not hmac.compare_digest(record.key_hash, session.proof)
        or not record.usable()
        or not may_sign_in(record)
    ):
        sessions.drop(session.id)
        return None
    if record.allowed is not None and (client is None or not record.allowed.allows(client)):
        return None  # signed in still, from where the key may be used
    return Admin(session, record)


async def charge(manager: AsyncKeyManager, admin: Admin, scope: str) -> Decision:
    """One use of the session's key for a page needing ``scope``: the accepting decision,
    or the refusal of its rate limits or credits (or its owner's). The admin API's own
    metering (``KeyManager.meter``), so a page and the API call doing the same thing cost
    the same; an unmetered key costs no I/O."""
    record = admin.key
    verifier = manager.sync.verifier
    accepted = verifier.accept(record, (scope,))
    if accepted is None:  # pages check the scope first; one that did not is refused here
        return verifier.lacking(record, (scope,))
    if not record.metered:
        return accepted
    return await asyncio.to_thread(manager.sync.meter, accepted, time.time())
