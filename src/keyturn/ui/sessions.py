"""Dashboard and portal sessions, kept on the server: the browser holds only a random id.

The cookie never carries the admin key, nor anything derived from it. A signed-in session
remembers who signed in (its ``subject``: the dashboard's admin key id, the portal's owner)
and a ``proof`` (the key's hash; the portal link's), and the dashboard re-reads the key's
record on every request (see ``keyturn.ui.admin``), so revoking, disabling or narrowing an
admin key takes effect on its open sessions at once. A portal session keeps what its link
opened (``data``: the owner and its policy). Sessions live in this process's memory: a
restart signs everybody out, which for a console guarding API keys is a feature, not a loss.

Anonymous sessions exist only to carry the sign-in form's CSRF token. Both kinds are kept in
least-recently-used order and capped, so a flood of sign-in page views costs bounded memory
and can push out other anonymous sessions but never a signed-in one.

Signed-in sessions are bounded per key (``PER_KEY_LIMIT``): a key signing in once more ends
its own oldest session. The global bound is far above what one key can hold, and when it is
reached all the same (hundreds of keys signing in over and over) the session that goes is
the oldest of the key holding the most, so no key can sign out admins of other keys by
signing in repeatedly.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_IDLE_SECONDS = 15 * 60
ANONYMOUS_LIMIT = 10_000
SIGNED_IN_LIMIT = 10_000
PER_KEY_LIMIT = 16


def new_token() -> str:
    """256 random bits, URL-safe: session ids and CSRF tokens."""
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class Session:
    id: str = field(repr=False)
    csrf: str = field(repr=False)
    last_seen: float
    subject: str | None = None
    proof: str | None = field(default=None, repr=False)
    data: Any = field(default=None, repr=False)
    # One message for the next page, shown after a redirect (post/redirect/get).
    flash: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.subject is not None

    def take_flash(self) -> str | None:
        message, self.flash = self.flash, None
        return message


class SessionStore:
    """Sessions by id, dropped after ``idle`` seconds without a request."""

    def __init__(
        self,
        idle: float = DEFAULT_IDLE_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        anonymous_limit: int = ANONYMOUS_LIMIT,
        signed_in_limit: int = SIGNED_IN_LIMIT,
        per_key_limit: int = PER_KEY_LIMIT,
    ) -> None:
        self.idle = idle
        self._clock = clock
        self._limits = {False: anonymous_limit, True: signed_in_limit}
        self._per_key = per_key_limit
        self._sessions: dict[bool, OrderedDict[str, Session]] = {
            False: OrderedDict(),
            True: OrderedDict(),
        }
        # key id -> ids of its signed-in sessions, oldest sign-in first
        self._by_key: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return sum(len(table) for table in self._sessions.values())

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (and mark it used), or ``None``."""
        if not session_id:
            return None
        now = self._clock()
        for table in self._sessions.values():
            session = table.get(session_id)
            if session is None:
                continue
            if now - session.last_seen >= self.idle:
                self._remove(table, session_id)
                return None
            session.last_seen = now
            table.move_to_end(session_id)
            return session
        return None

    def anonymous(self) -> Session:
        """A new session for a visitor who has not signed in (it holds a CSRF token)."""
        return self._add(Session(new_token(), new_token(), self._clock()))

    def sign_in(
        self, previous: Session | None, subject: str, proof: str, data: Any = None
    ) -> Session:
        """A new session for a key: new id and new CSRF token, so an id or token planted
        before sign-in (session fixation) is worth nothing after it. At the key's own bound
        its oldest session ends; at the global bound, the oldest of the busiest key's."""
        if previous is not None:
            self.drop(previous.id)
        table = self._sessions[True]
        self._prune(table)
        while self.sessions_of(subject) >= self._per_key:
            self._remove(table, next(iter(self._by_key[subject])))
        if len(table) >= self._limits[True]:
            busiest = max(self._by_key, key=lambda k: (len(self._by_key[k]), k == subject))
            self._remove(table, next(iter(self._by_key[busiest])))
        session = Session(
            new_token(), new_token(), self._clock(), subject=subject, proof=proof, data=data
        )
        table[session.id] = session
        self._by_key.setdefault(subject, OrderedDict())[session.id] = None
        return session

    def sessions_of(self, subject: str) -> int:
        """How many signed-in sessions ``subject`` holds."""
        return len(self._by_key.get(subject, ()))

    def drop(self, session_id: str) -> None:
        for table in self._sessions.values():
            self._remove(table, session_id)

    def drop_key(self, key_id: str) -> int:
        """End every session of one admin key; how many there were."""
        ids = list(self._by_key.get(key_id, ()))
        for sid in ids:
            self._remove(self._sessions[True], sid)
        return len(ids)

    def _add(self, session: Session) -> Session:
        """An anonymous session, pushing out the least recently used at the bound."""
        table = self._sessions[False]
        self._prune(table)
        while len(table) >= self._limits[False]:
            table.popitem(last=False)
        table[session.id] = session
        return session

    def _remove(self, table: OrderedDict[str, Session], session_id: str) -> None:
        session = table.pop(session_id, None)
        if session is None or session.subject is None:
            return
        ids = self._by_key.get(session.subject)
        if ids is not None:
            ids.pop(session_id, None)
            if not ids:
                del self._by_key[session.subject]

    def _prune(self, table: OrderedDict[str, Session]) -> None:
        """Drop idle sessions from the old end; the table is in last-used order."""
        cutoff = self._clock() - self.idle
        while table:
            oldest_id, oldest = next(iter(table.items()))
            if oldest.last_seen > cutoff:
                return
            self._remove(table, oldest_id)
