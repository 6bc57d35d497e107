"""Request ids, for every face (``/auth``, the verify and admin APIs, the integrations):
the id a trusted proxy set (``X-Request-Id``), taken under one set of rules, else one keyturn
makes. Each answer carries it and its decision is recorded under it in the verification log,
so the id a client or a log saw finds the entry ("Why was it rejected?",
``GET /v1/verifications?request_id=``).

keyturn's own ids come from one generator, so that every id has one shape: 32 hex digits
beginning with the time in milliseconds (when the id's run of 256 began), so ids sort as
they were made and the verification log's index on them grows at its end (random ids would
each land on a page of their own).

The rest is 48 bits drawn once per process and a counter, so a request costs no random
draw (and never the ``random`` module's shared state, which an application may have seeded
for its own use), no uuid and, for 255 ids in 256, no clock read or number formatting: a
run's ids are made together when it begins, and an id is then the next of a list, encoded
for the header (about 1,850 instructions, where making each id's text and bytes on its own
cost 2,750). A forked worker draws its own bits and begins a run of its own, so workers
forked from one parent never share ids.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence

from keyturn._addresses import AddressSet, parse_address
from keyturn._redact import mask_text

HEADER = "X-Request-Id"
HEADER_ASGI = b"x-request-id"
# An id taken as it is: what proxies make (nginx's ``$request_id``, UUIDs, ULIDs) and the
# log's readers can look up. No ``%``, ``+``, ``/`` or ``=``: text that could be a key
# percent- or base64-encoded is not weighed, it is replaced.
_TAKEN = re.compile(rb"[A-Za-z0-9._-]{1,128}")

# An id is a head (the time in milliseconds, 12 hex digits; 48 bits drawn once per process,
# 12; the run's number, 6) and its place in the run, 2 hex digits.
_LOW = [f"{n:02x}" for n in range(256)]
_runs = itertools.count().__next__  # atomic: threads never share a number
_process = secrets.token_hex(6)
_ids: Iterator[str] = iter(())  # the current run's ids not handed out yet


def new_id() -> tuple[str, bytes]:
    """A new request id, as ``Seen`` records it and as the header sends it."""
    rid = next(_ids, None)
    if rid is None:
        rid = _new_run()
    return rid, rid.encode()


def _new_run() -> str:
    """Begin a run and take its first id. A list iterator hands each id out once, whatever
    the threads: two threads that begin runs at once take one each (their numbers differ),
    and the ids left in the run replaced are never handed out."""
    global _ids
    run = _runs()
    head = f"{time.time_ns() // 1_000_000:012x}{_process}{run & 0xFFFFFF:06x}"
    _ids = ids = iter([head + low for low in _LOW])
    return next(ids)


def _reseed() -> None:
    global _process, _ids
    _process, _ids = secrets.token_hex(6), iter(())


os.register_at_fork(after_in_child=_reseed)


def request_id_of(given: Sequence[bytes], peer: str | None, trusted: AddressSet) -> str:
    """The request's id: the ``X-Request-Id`` a trusted proxy set, else a new one. A
    client's own id is not believed: it could name another request's entries. Nor is an
    id the log's readers could not look up (``GET /v1/verifications`` and the dashboard
    take at most 128 visible ASCII characters), nor one that is more than letters, digits
    and ``._-`` or that masking would change: proxies pass a client's id on, and the log
    keeps ids as they are, so an id holding a key, plainly or encoded, would store it
    whole. Nor one of several: a proxy that adds its id beside a client's would leave
    which is whose to guesswork."""
    if len(given) == 1 and peer is not None and trusted and _TAKEN.fullmatch(given[0]):
        taken = given[0].decode("ascii")
        if mask_text(taken) == taken:  # a client's key, passed on: never logged
            address = parse_address(peer)
            if address is not None and address in trusted:
                return taken
    return new_id()[0]


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
