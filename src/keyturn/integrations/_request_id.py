"""``X-Request-Id`` for the framework integrations: the id each answer carries is the one its
decision is recorded under in the verification log, so the id a client or a log saw finds
the entry ("Why was it rejected?", ``GET /v1/verifications?request_id=``).

The id a trusted proxy set (``X-Request-Id`` from a peer in ``trusted_proxies``) is taken
under ``/auth``'s rules (``keyturn._verifications.request_id_of``); a client's own is not
believed (it could name another request's entries). Otherwise a new one, from the generator
every face shares (``keyturn._request_ids``).
"""

from __future__ import annotations

from collections.abc import Iterable

from keyturn._addresses import AddressSet
from keyturn._request_ids import new_id
from keyturn._verifications import request_id_of

HEADER = "X-Request-Id"
HEADER_ASGI = b"x-request-id"

class RequestIds:
    """The request id of each request, given the ``trusted_proxies`` whose ids are taken."""

    __slots__ = ("trusted",)

    def __init__(self, trusted: AddressSet) -> None:
        self.trusted = trusted

    def asgi(
        self, headers: Iterable[tuple[bytes, bytes]], peer: str | None
    ) -> tuple[str, bytes]:
        """For ASGI header pairs; the headers are read only when some proxy is trusted."""
        if self.trusted:
            given = [value for name, value in headers if name == HEADER_ASGI]
            if given:
                taken = request_id_of(given, peer, self.trusted)
                return taken, taken.encode("ascii")
        return new_id()

    def of(self, given: str | None, peer: str | None) -> str:
        """For a request whose ``X-Request-Id`` header is ``given`` (WSGI, Django: several
        headers arrive joined by commas, which no id taken holds)."""
        if given is not None and self.trusted:
            return request_id_of([given.encode("latin-1")], peer, self.trusted)
        return new_id()[0]
