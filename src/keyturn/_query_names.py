"""The parameters of a query string that an upstream may read under given names.

keyturn judges a request and the upstream behind the proxy reads its query again, its own
way: a parameter keyturn reads one way but some upstream reads as a key (or as ``_method``)
is a credential, or a method, keyturn never judged. Parsers differ in:

- where pairs split: at ``&``, and at ``;`` too (Go before 1.17, Python's before 3.9.2,
  Rack 2, PHP with ``arg_separator.input = "&;"``);
- where the query ends: at a raw ``#`` (Node's ``url.parse``, which Express's
  method-override uses);
- the name: percent-decoded, ``+`` a space (every framework: ``%5Fmethod`` is
  ``_method``); PHP ends it at a NUL, drops leading spaces, and turns ``.``, a space, an
  unmatched ``[`` and chr(128)-chr(159) into ``_`` (``api.key`` is ``$_GET['api_key']``);
- case: ASP.NET compares names case-insensitively (``API_KEY`` is ``api_key`` to it).

One reader takes every one of those readings at once, so it is stricter than any single
parser: a parameter that one of them reads under the name counts. ``mentions`` is the cheap
byte test in front of it that the hot paths use: a query it finds nothing in has no such
parameter in any reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import unquote

# What PHP turns into ``_`` in a parameter's name.
_PHP_UNDERSCORE = str.maketrans(dict.fromkeys([" ", ".", "[", *map(chr, range(128, 160))], "_"))
# ... and the same on a raw query's bytes (``+`` is a space), with ASCII letters lower-cased:
# every name a parameter may be read as, in any case, is then written out in it.
_FOLD = bytes.maketrans(
    bytes(range(65, 91)) + b" +.[" + bytes(range(128, 160)),
    bytes(range(97, 123)) + b"_" * 36,
)


class QueryNames:
    """Finds the parameters an upstream may read as one of ``names`` (case-insensitive)."""

    __slots__ = ("_needles", "names")

    def __init__(self, names: Iterable[str]) -> None:
        # Each name lower-case, to the name as given (which ``pairs`` answers with).
        self.names = {name.lower(): name for name in reversed(list(names))}
        # What ``mentions`` looks for: a percent sign (it may encode any part of a name),
        # else a name, folded; one that holds another (``api_key``, ``key``) is no more.
        folded = sorted({name.encode().translate(_FOLD) for name in self.names}, key=len)
        needles: list[bytes] = []
        for name in folded:
            if not any(needle in name for needle in needles):
                needles.append(name)
        self._needles = (b"%", *needles) if needles else ()

    def mentions(self, query: bytes) -> bool:
        """``False`` when no parameter of the raw query is read as one of the names in
        any reading (the test in front of ``pairs``: one C pass and a search a needle)."""
        folded = query.translate(_FOLD)
        # ``bytes.find``, not ``in``: ``in`` tries the operand as an integer first, and the
        # TypeError it formats and drops costs more than the search; a loop, not ``any``
        # over a generator, whose frame costs more than the searches.
        for needle in self._needles:  # noqa: SIM110
            if folded.find(needle) >= 0:
                return True
        return False

    def pairs(self, query: str) -> list[tuple[str, str]]:
        """(name, value) of each parameter read under one of the names, in the query's
        order (a parameter read several ways may come more than once); ``name`` as
        given; the value percent-decoded byte by byte (latin-1)."""
        found = []
        for piece in _pieces(query):
            raw_name, _, raw_value = piece.partition("=")
            name = _decoded(raw_name).lower()
            cut = name.partition("\x00")[0]
            for read in (cut.strip(), cut.lstrip(" ").translate(_PHP_UNDERSCORE)):
                given = self.names.get(read)
                if given is not None:
                    found.append((given, _decoded(raw_value)))
                    break
        return found


def _pieces(query: str) -> Iterator[str]:
    """Every ``name=value`` piece some parser splits the query into."""
    for piece in query.split("&"):
        for whole in dict.fromkeys((piece, piece.partition("#")[0])):
            if whole:
                yield whole
            if ";" in whole:
                yield from whole.split(";")


def _decoded(text: str) -> str:
    return unquote(text.replace("+", " "), "latin-1") if "%" in text or "+" in text else text
