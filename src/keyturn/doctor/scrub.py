"""Keep the key out of every report: each encoding of it, and each piece long enough to matter.

Servers echo keys whole, cut by a length limit, inside a ``Basic`` header, percent- or
JSON-escaped; exceptions quote the header they could not send, escaped the way Python
writes bytes; URLs carry passwords. The scrubber knows every such form of each secret and
replaces any run of text that shares ``FRAGMENT`` (8) or more characters with one of them,
wherever it stands, before anything is cut to length.

It holds no secret in clear: only the per-process salted hashes (Python's string hash) of
the forms' 8-character pieces, so a report can carry its scrubber to the final rendering
without carrying the key.

A key's public prefix (``kt_live_``, ``sk_live_``: what its issuer prints beside it) is no
secret and helps the reader: a piece that lies within it is hidden only as part of a run
that holds some of the secret, never on its own ("a keyturn key (prefix kt_live_)").
"""

from __future__ import annotations

import base64
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from urllib.parse import quote, quote_plus, unquote

from keyturn._providers import identify_type
from keyturn.keys import KeyDefect, parse_key

FRAGMENT = 8  # fewer characters of a key are not worth hiding (nor findable in prose)
SHOWN = 4  # characters of each end a mask shows
ELLIPSIS = "…"
# Characters a mask may show: what keys are made of, nothing that means something to a
# terminal, a shell, Markdown or JSON.
_MASKABLE = re.compile(r"[A-Za-z0-9._~+/=:-]+")
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def masked(key: str) -> str:
    """``sk-p…9aB1``: the first and last four characters of a key of 16 or more, which
    recognises it without giving away 8 characters in a row; ``…`` for anything shorter or
    whose ends are not plain key characters."""
    key = key.strip()
    ends = key[:SHOWN] + key[-SHOWN:]
    if len(key) < 4 * SHOWN or not _MASKABLE.fullmatch(ends):
        return ELLIPSIS
    return f"{key[:SHOWN]}{ELLIPSIS}{key[-SHOWN:]}"


def public_head(key: str) -> str:
    """The part of ``key`` its issuer publishes: a keyturn key's prefix and ``_``, a
    catalogued provider type's prefix; ``""`` when nothing says."""
    parsed = parse_key(key)
    if not isinstance(parsed, KeyDefect):
        return parsed.prefix + "_"
    match = identify_type(key)
    return match[1].prefix if match is not None else ""


def _base64_forms(data: bytes) -> Iterator[str]:
    """The key inside any base64 text (a Basic header's ``user:key``), whatever precedes it:
    for each of the three alignments, the characters that depend on the key alone."""
    for pad in range(3):
        start = -(-8 * pad // 6)  # the first character holding no padding bits
        end = 8 * (pad + len(data)) // 6  # the last whole character of the key's bits
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            yield encode(b"\0" * pad + data).decode()[start:end]


def _utf8(text: str) -> bytes:
    """The bytes ``text`` stands for (an environment variable's undecodable bytes
    come back as they were)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def forms(secret: str) -> set[str]:
    """Every way ``secret`` is written in text the doctor may be shown."""
    data = _utf8(secret)
    found = {
        secret,
        " ".join(secret.split()),  # as messages are tidied
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        repr(secret)[1:-1],
        repr(data)[2:-1],  # as an exception quotes the bytes it could not send
        html.escape(secret),
        data.decode("latin-1"),  # UTF-8 read as Latin-1 (header values)
        data.hex(),
        data.hex().upper(),
        *_base64_forms(data),
    }
    found |= {_PERCENT.sub(lambda m: m[0].lower(), f) for f in found if "%" in f}
    return {f for f in found if len(f) >= FRAGMENT}


# An answer that spells the key some way no list of forms foresees (numeric HTML entities,
# upper case, in groups of four, spaced, full-width) still holds its letters and digits in
# order: a run of this many of the secret's, read that way, is the key.
SPELLED = 10
SPELLED_NOTICE = "(not shown: the answer spells out the key)"
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def spelled(text: str) -> str:
    """``text``'s ASCII letters and digits, lower-cased, once its escapes (HTML, JSON,
    percent) are decoded and compatibility forms (full-width letters) folded: how a
    reader of the text could put a key written in it back together."""
    text = unquote(html.unescape(_ESCAPED.sub(lambda m: chr(int(m[1], 16)), text)))
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).casefold())


class Scrubber:
    """Replaces every piece of every form of the secrets by a mask, in any text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # hash of an 8-character piece -> (mask to show, whether it holds any of the secret)
        self._pieces: dict[int, tuple[str, bool]] = {}
        # hashes of SPELLED-character runs of each secret as ``spelled`` reads it
        self._spelled: set[int] = set()
        for secret in secrets:
            if len(secret.strip()) < FRAGMENT:
                continue  # not a key: a placeholder, or nothing
            shown = masked(secret)
            head = public_head(secret.strip())
            letters = spelled(secret.strip().removeprefix(head))
            for i in range(len(letters) - SPELLED + 1):
                self._spelled.add(hash(letters[i : i + SPELLED]))
            for form in forms(secret):
                for i in range(len(form) - FRAGMENT + 1):
                    piece = form[i : i + FRAGMENT]
                    secret_piece = piece not in head
                    known = self._pieces.get(hash(piece))
                    if known is None or (secret_piece and not known[1]):
                        self._pieces[hash(piece)] = (shown, secret_piece)

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def __call__(self, text: str) -> str:
        """``text`` with every run that shares 8 characters with a secret replaced.

        Each round replaces runs of at least 8 characters by at most their length less
        one, so new pieces formed at a seam are caught by the next round, and it ends."""
        first = True
        while True:
            spans = self._spans(text)
            if not spans:
                return text
            out, last = [], 0
            for start, end, shown in spans:
                out.append(text[last:start])
                out.append(shown if first and end - start > len(shown) else ELLIPSIS)
                last = end
            out.append(text[last:])
            text = "".join(out)
            first = False

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        """Maximal runs of text covered by secret pieces: (start, end, mask); a run of
        public-prefix pieces alone is none."""
        spans: list[tuple[int, int, str, bool]] = []
        pieces = self._pieces
        if not pieces:
            return []
        for i in range(len(text) - FRAGMENT + 1):
            known = pieces.get(hash(text[i : i + FRAGMENT]))
            if known is None:
                continue
            shown, secret = known
            if spans and i <= spans[-1][1]:
                start, _, first_shown, held = spans[-1]
                spans[-1] = (start, i + FRAGMENT, first_shown, held or secret)
            else:
                spans.append((i, i + FRAGMENT, shown, secret))
        return [(start, end, shown) for start, end, shown, held in spans if held]

    def answer(self, text: str) -> str:
        """A server's text (a header's value, a body): scrubbed, and withheld whole if it
        still spells the key out in a form no mask found."""
        text = self(text)
        if self._spelled and len(text) >= SPELLED:
            letters = spelled(text)
            runs = self._spelled
            for i in range(len(letters) - SPELLED + 1):
                if hash(letters[i : i + SPELLED]) in runs:
                    return SPELLED_NOTICE
        return text

    def bytes(self, data: bytes) -> bytes:
        """``answer`` for a body (UTF-8 text); unchanged when nothing matched."""
        if not self._pieces or len(data) < FRAGMENT:
            return data
        text = data.decode("utf-8", errors="surrogateescape")
        scrubbed = self.answer(text)
        return data if scrubbed == text else scrubbed.encode("utf-8", errors="surrogateescape")
