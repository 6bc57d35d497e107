"""Dashboard sessions, kept on the server: the browser holds only a random id.

The cookie never carries the admin key, nor anything derived from it. A signed-in session
remembers the key's id and hash, and every request re-reads that key's record (see
``keyturn.ui.admin``), so revoking, disabling or narrowing an admin key takes effect on its
open sessions at once. Sessions live in this process's memory: a restart signs everybody
out, which for a console guarding API keys is a feature, not a loss.

Anonymous sessions exist only to carry the sign-in form's CSRF token. Both kinds are kept in
least-recently-used order and capped, so a flood of sign-in page views costs bounded memory
and can push out other anonymous sessions but never a signed-in one.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_IDLE_SECONDS = 15 * 60
ANONYMOUS_LIMIT = 10_000
SIGNED_IN_LIMIT = 10_000


def new_token() -> str:
    """256 random bits, URL-safe: session ids and CSRF tokens."""
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class Session:
    id: str = field(repr=False)
    csrf: str = field(repr=False)
    last_seen: float
    key_id: str | None = None
    key_hash: str | None = field(default=None, repr=False)
    # One message for the next page, shown after a redirect (post/redirect/get).
    flash: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.key_id is not None

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
    ) -> None:
        self.idle = idle
        self._clock = clock
        self._limits = {False: anonymous_limit, True: signed_in_limit}
        self._sessions: dict[bool, OrderedDict[str, Session]] = {
            False: OrderedDict(),
            True: OrderedDict(),
        }

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
                del table[session_id]
                return None
            session.last_seen = now
            table.move_to_end(session_id)
            return session
        return None

    def anonymous(self) -> Session:
        """A new session for a visitor who has not signed in (it holds a CSRF token)."""
        return self._add(Session(new_token(), new_token(), self._clock()))

    def sign_in(self, previous: Session | None, key_id: str, key_hash: str) -> Session:
        """A new session for a key: new id and new CSRF token, so an id or token planted
        before sign-in (session fixation) is worth nothing after it."""
        if previous is not None:
            self.drop(previous.id)
        return self._add(
            Session(new_token(), new_token(), self._clock(), key_id=key_id, key_hash=key_hash)
        )

    def drop(self, session_id: str) -> None:
        for table in self._sessions.values():
            table.pop(session_id, None)

    def drop_key(self, key_id: str) -> int:
        """End every session of one admin key; how many there were."""
        table = self._sessions[True]
        ids = [sid for sid, session in table.items() if session.key_id == key_id]
        for sid in ids:
            del table[sid]
        return len(ids)

    def _add(self, session: Session) -> Session:
        table = self._sessions[session.signed_in]
        self._prune(table)
        while len(table) >= self._limits[session.signed_in]:
            table.popitem(last=False)
        table[session.id] = session
        return session

    def _prune(self, table: OrderedDict[str, Session]) -> None:
        """Drop idle sessions from the old end; the table is in last-used order."""
        cutoff = self._clock() - self.idle
        while table:
            oldest = next(iter(table.values()))
            if oldest.last_seen > cutoff:
                return
            table.popitem(last=False)
