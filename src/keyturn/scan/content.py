"""What bytes a file gives the detectors: text as UTF-8-compatible bytes, or nothing.

The detectors read bytes, so ASCII-compatible encodings (UTF-8, Latin-1, ...) are scanned as
they are. A file that starts with a UTF-16 or UTF-32 byte order mark is text too, though
half its bytes are NUL: it is decoded and re-encoded as UTF-8, so a key in a Windows tool's
UTF-16 export is found, not skipped as binary. Anything else holding a NUL byte in its first
8000 bytes is binary, as git decides.
"""

from __future__ import annotations

import codecs

SNIFF = 8000  # like git: a NUL byte in the first 8000 bytes makes a file binary

# Longest mark first: UTF-32-LE's mark starts with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:SNIFF]


def text_of(data: bytes) -> bytes | None:
    """The bytes to scan for a file's content, or ``None`` for a binary file."""
    for mark, codec in _BOMS:
        if data.startswith(mark):
            text = data[len(mark) :].decode(codec, "replace")
            return None if "\0" in text[:SNIFF] else text.encode("utf-8", "replace")
    return None if is_binary(data) else data
