"""The request ids keyturn makes, one generator for every face (``/auth``, the verify and
admin APIs, the integrations), so that every id has one shape: 32 hex digits beginning with
the time in milliseconds (when the id's run of 256 began), so ids sort as they were made
and the verification log's index on them grows at its end (random ids would each land on a
page of their own).

The rest is 48 bits drawn once per process and a counter, so a request costs no random
draw (and never the ``random`` module's shared state, which an application may have seeded
for its own use), no uuid and, for 255 ids in 256, no clock read or number formatting. A
forked worker draws its own bits, so workers forked from one parent never share ids.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time

# An id is a head (the time in milliseconds, 12 hex digits; 48 bits drawn once per process,
# 12; the run's number, 6) and the last two hex digits of its place in the run, taken from
# these tables: a run of 256 ids formats one head, and each id in it costs two joins.
_LOW = [f"{n:02x}" for n in range(256)]
_LOW_BYTES = [low.encode("ascii") for low in _LOW]
_count = itertools.count().__next__  # atomic: threads never share a number
_process = secrets.token_hex(6)
_run: tuple[int, str, bytes] = (-1, "", b"")  # the run, its head as str and as bytes


def new_id() -> tuple[str, bytes]:
    """A new request id, as ``Seen`` records it and as the header sends it."""
    global _run
    number = _count()
    run, head, head_bytes = _run
    if number >> 8 != run:  # a new run (or a thread that read the next one's head first)
        run = number >> 8
        head = f"{time.time_ns() // 1_000_000:012x}{_process}{run & 0xFFFFFF:06x}"
        head_bytes = head.encode("ascii")
        _run = run, head, head_bytes
    low = number & 0xFF
    return head + _LOW[low], head_bytes + _LOW_BYTES[low]


def _reseed() -> None:
    global _process, _run
    _process, _run = secrets.token_hex(6), (-1, "", b"")


os.register_at_fork(after_in_child=_reseed)
