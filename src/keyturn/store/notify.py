"""PostgreSQL ``LISTEN``: the change feed that keeps every instance's cache current.

One thread per manager holds one connection that listens on the store's channel. Every
write that changes a key sends ``NOTIFY`` with the key's hash inside its transaction, so
PostgreSQL delivers it to each listener when (and only if) the change commits, typically
within a millisecond or two.

A listener cannot tell a quiet channel from a dead connection, so it proves itself: every
``bound / 3`` seconds it runs ``SELECT 1``, each with a ``bound / 3`` timeout. PostgreSQL
sends a listening session its pending notifications before answering a query, so a
heartbeat that returns means every change committed before it started has been seen. If a
heartbeat fails or times out, at most ``2 * bound / 3`` seconds after the last good one
started, the listener reports ``lost``: the cache drops everything and falls back to entries
that live ``bound`` seconds, until the listener is back (``live``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Protocol

import psycopg


class ChangeListener(Protocol):
    def changed(self, key_hash: str) -> None:
        """A key changed: forget what is cached for its hash."""

    def live(self) -> None:
        """Listening (again): nothing announced from now on will be missed."""

    def lost(self) -> None:
        """Not listening: announcements may be missed until ``live`` is called."""


class ChangeFeed:
    """Listens on ``channel`` in a daemon thread until ``close``."""

    def __init__(self, url: str, channel: str, listener: ChangeListener, bound: float) -> None:
        self.url = url
        self.channel = channel
        self.listener = listener
        self.period = max(0.01, bound / 3)
        self.connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="keyturn-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._listen())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        self._loop.close()

    async def _listen(self) -> None:
        period = self.period
        while True:
            held: list[psycopg.AsyncConnection[Any]] = []
            try:
                conn = await asyncio.wait_for(
                    psycopg.AsyncConnection.connect(self.url, autocommit=True),
                    timeout=max(period, 5.0),
                )
                held.append(conn)
                await asyncio.wait_for(conn.execute(f"LISTEN {self.channel}"), timeout=period)
                self.listener.live()
                self.connected.set()
                while True:
                    async for note in conn.notifies(timeout=period):
                        self.listener.changed(note.payload)
                    await asyncio.wait_for(conn.execute("SELECT 1"), timeout=period)
            except asyncio.CancelledError:
                raise
            except Exception:  # any failure means the same: we may be missing changes
                self.connected.clear()
                self.listener.lost()
                await asyncio.sleep(period)
            finally:
                for conn in held:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=period)

    def close(self) -> None:
        task = self._task
        if task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=5.0)
