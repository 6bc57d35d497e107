"""Connections: a deadline for every request's headers, and a ceiling on how many are open.

uvicorn (on h11 or httptools) waits forever for a request's headers: its keep-alive timeout
runs only between requests, and stops at the first byte of the next one. A client that opens
a connection and never finishes its headers holds a file descriptor for good, and about a
thousand of them exhaust the usual 1,024-descriptor limit: ``accept`` fails and ``/auth``
goes down for everyone. uvicorn's ``limit_concurrency`` does not help, since it is checked
only once a request's headers are complete.

So the server's HTTP protocol class is uvicorn's own with this mixin (``guarded``):

- **Header deadline.** A connection must deliver a complete request head within
  ``read_timeout`` seconds of opening, and of the first byte of each later request. A
  sweep (one timer for the whole server, only while some connection waits or is idle)
  answers the late ones ``408`` (``request_timeout``) and closes them.
- **Ceiling.** At most ``ceiling`` connections are open. A new one beyond it first pushes
  out the oldest connection still waiting for its headers, then the keep-alive connection
  idle longest (since its last answer, not since it opened): a slow-loris flood thus
  recycles its own connections while complete requests get through. Only when every open
  connection is busy answering a request is the new one refused, at once, with ``503``
  (``server_busy``) and ``Retry-After``.
- **Keep-alive.** A connection answered in the protocol (``direct_auth``) is closed, as
  uvicorn closes one answered through ASGI, once idle for uvicorn's keep-alive timeout, by
  the same sweep: no timer to make and cancel per request.
- **Unread bodies.** When a response is sent before the request's body was read (``/auth``
  never reads one; a refused API call does not either), uvicorn would read and discard the
  rest for as long as the client sends. Here at most ``drain`` more bytes are discarded,
  within the header deadline, and then the connection is closed.

The requests themselves pay nothing: the deadline is a timestamp in a dict while headers
are incomplete, a request that arrives in one piece never enters it for long, and an idle
connection's keep-alive is the time it went idle.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from keyturn._asgi import Scope
from keyturn.answer import PROBLEM_JSON, problem
from keyturn.service.direct_auth import UVICORN_TESTED, seam_for
from keyturn.service.forward_auth import Wire

_log = logging.getLogger("keyturn.service")
RETRY_AFTER = 1
MAX_HEAD = 64 * 1024


def raw_answer(
    code: str, detail: str, *headers: tuple[str, str], public_url: str | None = None
) -> bytes:
    """A whole HTTP/1.1 answer with the catalogue's problem, which closes the connection."""
    answer = problem(code, detail, public_url=public_url)
    body = json.dumps(answer, separators=(",", ":")).encode()
    lines = [
        f"HTTP/1.1 {answer['status']} {answer['title']}",
        f"content-type: {PROBLEM_JSON}",
        f"content-length: {len(body)}",
        "cache-control: no-store",
        "connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Edge:
    """What the connections of one server share: the limits, and who is waiting."""

    def __init__(
        self, ceiling: int, read_timeout: float, drain: int, public_url: str | None = None
    ) -> None:
        self.ceiling = ceiling
        self.read_timeout = read_timeout
        self.drain = drain
        self.open: set[Any] = set()
        # Connections whose request head is incomplete -> when they started it (oldest first).
        self.waiting: OrderedDict[Any, float] = OrderedDict()
        # Keep-alive connections between requests -> since when (idle longest first).
        self.idle: OrderedDict[Any, float] = OrderedDict()
        self._sweep: asyncio.TimerHandle | None = None
        self.late = raw_answer(
            "request_timeout",
            f"the request's headers did not arrive within {read_timeout:g} s",
            public_url=public_url,
        )
        self.huge = raw_answer(
            "headers_too_large",
            f"the request head is larger than {MAX_HEAD} bytes",
            public_url=public_url,
        )
        self.busy = raw_answer(
            "server_busy",
            f"the server holds {ceiling} connections, all busy",
            ("retry-after", str(RETRY_AFTER)),
            public_url=public_url,
        )

    def admit(self, protocol: Any, now: float) -> bool:
        """Count ``protocol`` in, pushing out a waiting or idle one at the ceiling; ``False``
        when every open connection is busy."""
        if len(self.open) >= self.ceiling:
            if self.waiting:
                oldest = next(iter(self.waiting))
                self.close(oldest, self.late if oldest.answerable() else b"")
            elif self.idle:
                self.close(next(iter(self.idle)), b"")
            else:
                return False
        self.open.add(protocol)
        self.wait(protocol, now)
        return True

    def wait(self, protocol: Any, now: float) -> None:
        self.idle.pop(protocol, None)
        self.waiting[protocol] = now
        self.waiting.move_to_end(protocol)
        if self._sweep is None:
            self._sweep = protocol.loop.call_later(self._tick(), self.sweep, protocol.loop)

    def rest(self, protocol: Any, now: float) -> None:
        """``protocol`` is between requests since ``now``: the newest idle connection, the
        last to be pushed out, closed by the sweep once idle for its keep-alive timeout."""
        self.waiting.pop(protocol, None)
        idle = self.idle
        idle[protocol] = now
        idle.move_to_end(protocol)
        if self._sweep is None:
            self._sweep = protocol.loop.call_later(self._tick(), self.sweep, protocol.loop)

    def forget(self, protocol: Any) -> None:
        self.open.discard(protocol)
        self.waiting.pop(protocol, None)
        self.idle.pop(protocol, None)

    def close(self, protocol: Any, answer: bytes) -> None:
        self.forget(protocol)
        transport = protocol.transport
        if not transport.is_closing():
            if answer:
                transport.write(answer)
            transport.close()

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the connections whose headers are late, and those idle beyond uvicorn's
        keep-alive timeout (its own handler closes them); again later while any wait or
        are idle."""
        self._sweep = None
        now = loop.time()
        deadline = now - self.read_timeout
        while self.waiting:
            protocol, since = next(iter(self.waiting.items()))
            if since > deadline:
                break
            self.close(protocol, self.late if protocol.answerable() else b"")
        idle = self.idle
        while idle:
            protocol, since = next(iter(idle.items()))
            if since > now - protocol.timeout_keep_alive:
                break
            del idle[protocol]
            protocol.timeout_keep_alive_handler()
        if self.waiting or idle:
            self._sweep = loop.call_later(self._tick(), self.sweep, loop)

    def _tick(self) -> float:
        return min(1.0, self.read_timeout / 4)


class GuardedProtocol:
    """The mixin for uvicorn's ``H11Protocol`` or ``HttpToolsProtocol`` (see ``guarded``)."""

    edge: Edge
    # uvicorn's attributes, set by its protocol classes.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._draining = -1  # bytes of an unread body still allowed in; -1: not draining
        self._head = 0  # bytes of an incomplete request head received so far
        if not self.edge.admit(self, self.loop.time()):
            _log.warning("refused a connection: %d open, all busy", len(self.edge.open))
            transport.write(self.edge.busy)
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self._draining >= 0:
            self._draining -= len(data)
            if self._draining < 0:
                self.edge.close(self, b"")
                return
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        edge = self.edge
        if self.cycle is not cycle:  # a request head is complete: busy, not evictable
            edge.waiting.pop(self, None)
            edge.idle.pop(self, None)
            self._draining = -1
        elif self in edge.idle:  # the next request has begun, and its head is not complete
            edge.wait(self, self.loop.time())
            self._head = len(data)
        elif self._draining < 0 and self in edge.waiting:  # h11 bounds a head, httptools not
            self._head += len(data)
            if self._head > MAX_HEAD:
                edge.close(self, edge.huge)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        cycle = self.cycle
        if self.transport.is_closing() or self not in self.edge.open:
            return
        if cycle is not None and cycle.more_body and cycle.response_complete:
            # Answered before its body was read: let a little more in, then close.
            self._draining = self.edge.drain
            self.edge.wait(self, self.loop.time())
        elif cycle is None or cycle.response_complete:
            # Between requests again (uvicorn has set its keep-alive timer too).
            self.edge.rest(self, self.loop.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self.edge.forget(self)
        super().connection_lost(exc)  # type: ignore[misc]

    def answerable(self) -> bool:
        """No response is under way, so a 408 can be written as it is."""
        cycle = self.cycle
        return cycle is None or cycle.response_complete


def guarded(
    edge: Edge,
    base: type[asyncio.Protocol] | None = None,
    direct: Callable[[Scope], Wire | None] | None = None,
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (``base``; by default httptools when installed, else
    h11), under ``edge``; with ``direct`` (``ForwardAuth.answer_now``) answering the plain
    ``/auth`` requests in the protocol (``keyturn.service.direct_auth``) where the uvicorn
    release is one that is tested with it."""
    if base is None:
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            base = HttpToolsProtocol
        except ImportError:
            base = H11Protocol
    if direct is not None:
        seam = seam_for(base)
        if seam is not None:
            return type(
                f"DirectGuarded{base.__name__}",
                (seam, GuardedProtocol, base),
                {"edge": edge, "answer_now": staticmethod(direct)},
            )
        oldest, newest = (".".join(map(str, r)) for r in UVICORN_TESTED)
        _log.info(
            "/auth is answered through ASGI: answering it in uvicorn's protocol is tested "
            "with uvicorn %s to %s (this is %s)", oldest, newest, uvicorn.__version__,
        )
    return type(f"Guarded{base.__name__}", (GuardedProtocol, base), {"edge": edge})
