"""PostgreSQL ``LISTEN``: the change feed that keeps every instance's cache current.

One thread per manager holds one connection that listens on the store's channel. Every
write that changes a key sends ``NOTIFY`` with the key's hash inside its transaction, so
PostgreSQL delivers it to each listener when (and only if) the change commits, typically
within a millisecond or two.

A listener cannot tell a quiet channel from a dead connection, so it proves itself with a
heartbeat, ``SELECT 1``. PostgreSQL sends a listening session its pending notifications
before answering a query, so a heartbeat that returns means every change committed before
it started has been seen. Heartbeats start half a budget (90% of the bound) after the last
good one started, and may take whatever is left of the budget; one that fails or is not back
in time makes the listener report ``lost`` before the bound has passed since the last proof.
The cache then drops everything and falls back to entries that live ``bound`` seconds, until
the listener is back (``live``). A busy machine thus costs speed, never the bound.
"""

from __future__ import annotations

from keyturn._extras import require

require("postgres", "keyturn.store.notify")

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any, Protocol

import psycopg

log = logging.getLogger("keyturn.store")


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
        self.budget = max(0.03, bound * 0.9)
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
        budget = self.budget
        while True:
            held: list[psycopg.AsyncConnection[Any]] = []
            try:
                conn = await asyncio.wait_for(
                    psycopg.AsyncConnection.connect(self.url, autocommit=True),
                    timeout=max(budget, 5.0),
                )
                held.append(conn)
                proven = time.monotonic()
                await asyncio.wait_for(conn.execute(f"LISTEN {self.channel}"), timeout=budget)
                self.listener.live()
                self.connected.set()
                while True:
                    wait = max(0.0, proven + budget / 2 - time.monotonic())
                    async for note in conn.notifies(timeout=wait):
                        self.listener.changed(note.payload)
                    started = time.monotonic()
                    left = proven + budget - started
                    if left <= 0:
                        raise TimeoutError("no time left for a heartbeat")
                    await self._heartbeat(conn, left)
                    proven = started
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means the same: we may be missing changes
                if self.connected.is_set():
                    log.warning("change feed lost (%s); caching for the bound only", exc)
                self.connected.clear()
                self.listener.lost()
                await asyncio.sleep(min(budget, 1.0))
            finally:
                for conn in held:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=budget)

    async def _heartbeat(self, conn: psycopg.AsyncConnection[Any], left: float) -> None:
        """``SELECT 1`` within ``left`` seconds, or ``lost`` reported at once: cancelling a
        query on a server that does not answer takes the driver up to 10 s more, and the
        bound cannot wait for that."""
        beat = asyncio.ensure_future(conn.execute("SELECT 1"))
        done, _ = await asyncio.wait({beat}, timeout=left)
        if not done:
            self.listener.lost()
            # Not awaited: closing the connection (the caller does) ends the cancellation.
            beat.add_done_callback(lambda task: task.cancelled() or task.exception())
            beat.cancel()
            raise TimeoutError("no answer to the heartbeat in time")
        beat.result()

    def close(self) -> None:
        task = self._task
        if task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(timeout=5.0)
