"""``X-Request-Id`` for the framework integrations: the id each answer carries is the one its
decision is recorded under in the verification log, so the id a client or a log saw finds
the entry ("Why was it rejected?", ``GET /v1/verifications?request_id=``).

The id a trusted proxy set (``X-Request-Id`` from a peer in ``trusted_proxies``) is taken
under ``/auth``'s rules (``keyturn._verifications.request_id_of``); a client's own is not
believed (it could name another request's entries). Otherwise a new one of the same shape
as ``/auth``'s, 32 hex digits beginning with the time in milliseconds (so ids sort as they
were made and the log's index grows at its end), where the 80 random bits of ``/auth``'s
are 48 drawn once per process and a 32-bit counter: one clock read and one bytes
formatting, no random draw, uuid or string building per request, on a path that costs a few
microseconds. A forked worker draws its own bits, so workers forked from one parent never
share ids.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable, Iterable

from keyturn._addresses import AddressSet
from keyturn._verifications import request_id_of

HEADER = "X-Request-Id"
HEADER_ASGI = b"x-request-id"


def _fresh() -> Callable[[], bytes]:
    process = secrets.token_hex(6).encode("ascii")  # 48 bits
    count = itertools.count(1).__next__
    clock = time.time_ns
    # The counter wraps at 2**32: the time in front keeps the ids apart.
    return lambda: b"%012x%s%08x" % (clock() // 1_000_000, process, count() & 0xFFFFFFFF)


new_id: Callable[[], bytes] = _fresh()
"""A new request id (ASCII bytes, as a header value)."""


def _reseed() -> None:
    global new_id
    new_id = _fresh()


os.register_at_fork(after_in_child=_reseed)


class RequestIds:
    """The request id of each request, given the ``trusted_proxies`` whose ids are taken."""

    __slots__ = ("trusted",)

    def __init__(self, trusted: AddressSet) -> None:
        self.trusted = trusted

    def asgi(self, headers: Iterable[tuple[bytes, bytes]], peer: str | None) -> bytes:
        """For ASGI header pairs, as a header value; the headers are read only when some
        proxy is trusted."""
        if self.trusted:
            given = [value for name, value in headers if name == HEADER_ASGI]
            if given:
                return request_id_of(given, peer, self.trusted).encode("ascii")
        return new_id()

    def of(self, given: str | None, peer: str | None) -> str:
        """For a request whose ``X-Request-Id`` header is ``given`` (WSGI, Django: several
        headers arrive joined by commas, which no id taken holds)."""
        if given is not None and self.trusted:
            return request_id_of([given.encode("latin-1")], peer, self.trusted)
        return new_id().decode("ascii")
