"""How the verification log packs its entries into blocks, the same for every engine.

A row per entry cost the log's writer about 11,000 instructions in SQLite alone (binding
the row, the row, an index entry on the request id and one on the key), most of what
the log cost a request. Traffic repeats itself: a batch of half a second holds many
requests of one key, outcome, method and user agent (a shape), and keyturn's request ids
are made in runs of 256 that share all but their last two characters. So a batch's
entries that share a key, shape and request-id head (``split_request_id``) are one row, a
block, and the row and its index entries are paid once per block. An entry's own values
(its time, request-id tail, path, client address) are packed into the block's columns
here, by C loops (``struct``, ``json``), and unpacked when read. The client is an entry's
own, not the block's: traffic of many addresses (an app's users sharing its key, a public
API's callers) interleaves them, and blocks split by client held one to five entries
each, a row costing more than a row an entry had (migration 0090).

A block's entries have consecutive ids: the block's id is its first entry's, and the
entry at ``place`` in it has ``id + place``; they are in the order they were queued, which
is the order of their times on one instance.

A block holds at most ``MOST_ENTRIES`` entries (a keyturn run): a trusted proxy passing
one request id on every request would otherwise make a whole batch one block, its texts
one long JSON array for every read of it to unpack.

Request ids that share no head (random ones a trusted proxy passed on: nginx's
``$request_id``, UUIDs) are *loose*: the writer groups them again by key, shape and minute
into blocks of head "" whose tails are the whole ids, and the store indexes each by its
request id in ``verification_requests`` (``keyturn._verifications._loosened``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring
from typing import Any

# A request id's tail: its last two characters, the place in its run of a keyturn id
# (``keyturn._request_ids``). An id of two characters or fewer is all head.
TAIL = 2
# A block's most entries: a run of keyturn's request ids (``keyturn._request_ids``).
MOST_ENTRIES = 256

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# A block's JSON array parsed where it starts, to where it ends: ``JSONDecoder.decode`` also
# matches a regular expression twice (for whitespace around the array, which no block
# holds), which cost a block of one entry more than parsing it.
_parse = json.JSONDecoder().raw_decode


def split_request_id(request_id: str) -> tuple[str, str]:
    """A request id's head (what the block is found by: ``GET /v1/verifications
    ?request_id=`` reads the index on it) and its tail (kept in the block)."""
    if len(request_id) <= TAIL:
        return request_id, ""
    return request_id[:-TAIL], request_id[-TAIL:]


def pack_times(times: Sequence[float]) -> bytes | None:
    """Entries' times (Unix seconds) as little-endian doubles: 8 bytes an entry, packed in
    one C call, the same bytes on every machine sharing a database. ``None`` for a block of
    one entry, whose time is the block's own (``at``): what an entry stored one to a row
    (before migration 0100) reads as, and what a block of one costs nothing to pack."""
    if len(times) == 1:
        return None
    return struct.pack(f"<{len(times)}d", *times)


def unpack_times(packed: bytes | None, at: float) -> tuple[float, ...]:
    if packed is None:
        return (at,)
    return struct.unpack(f"<{len(packed) // 8}d", packed)


def uniform(values: Sequence[Any]) -> bool:
    """Whether a sequence (a batch's column, a block's texts) holds one value: a C loop,
    most often finding the same object by identity before any comparison."""
    return values.count(values[0]) == len(values)


def pack_texts(texts: Sequence[str | None]) -> str:
    """Entries' texts (request-id tails, paths, client addresses) as a JSON array, a
    ``None`` (an address not known) as ``null``; one element when every entry has the
    same text (most blocks' paths), which ``unpack_texts`` repeats."""
    if uniform(texts):
        texts = texts[:1]
    if _plain(texts):
        return '["' + '","'.join(texts) + '"]'  # type: ignore[arg-type]  # _plain: all str
    return _dumps(list(texts))


def pack_each(texts: Sequence[str | None]) -> list[str]:
    """``pack_texts`` of each text alone, for blocks of one entry, in C loops: when no text
    holds what JSON escapes (a control character among them, so no line break) and none
    is ``None``, every array is made by one join and one split. A batch of a new client,
    or of a proxy's random request ids, each is a block an entry, and packing them one by
    one in Python cost more than storing them."""
    if _plain(texts):
        return ('["' + '"]\n["'.join(texts) + '"]').split("\n")  # type: ignore[arg-type]
    return [_dumps([text]) for text in texts]


def _plain(texts: Sequence[str | None]) -> bool:
    """Whether ``texts`` are all ``str`` (a ``None`` makes the join raise: no comparison
    an element) holding nothing JSON escapes (``ensure_ascii=False``): joined as they are,
    quoted, one C call, where the encoder cost a block several thousand instructions. Every
    escape is longer than what it escapes, so the quoted text is two characters longer
    exactly when nothing was; the encoder's C loop checks a character in about half the
    time a regular expression's character class took."""
    try:
        joined = "".join(texts)  # type: ignore[arg-type]
    except TypeError:
        return False
    return len(encode_basestring(joined)) == len(joined) + 2


def unpack_texts(packed: str, count: int) -> list[Any]:
    """A block's texts (``str``, or ``None`` for a client address not known)."""
    texts: list[Any]
    texts, end = _parse(packed)
    if end != len(packed):
        raise ValueError(f"a block's texts end before their column: {packed[:40]!r}")
    if len(texts) == 1 and count != 1:
        return texts * count
    if len(texts) != count:
        raise ValueError(f"a block of {count} entries holds {len(texts)} texts")
    return texts


def unpack(
    first_id: int, count: int, at: float, head: str, tails: str, times: bytes | None,
    paths: str, clients: str,
) -> Iterator[tuple[int, float, str, str, str | None]]:
    """A block's entries in the order they were written: id, time, request id, path,
    client address.
    ``at``: the block's time (its newest entry's, Unix seconds)."""
    moments = unpack_times(times, at)
    if len(moments) != count:
        raise ValueError(f"a block of {count} entries holds {len(moments)} times")
    return zip(
        range(first_id, first_id + count),
        moments,
        [head + tail for tail in unpack_texts(tails, count)],
        unpack_texts(paths, count),
        unpack_texts(clients, count),
        strict=True,
    )
