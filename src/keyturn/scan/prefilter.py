"""Which parts of a file can hold a secret at all? Cheap substring tests before any regex.

``bytes.find`` and Aho-Corasick run at memory speed, a regex does not. Every distinctive
key starts with a literal anchor (``ghp_``, ``sk-ant-``): one pass finds every anchor, so a
file without the anchor never runs that shape's regex; a generic assignment needs a keyword
(``token``, ``secret``, ``bearer``), so
only the lines holding one are matched at all. Most lines of most files end here.
"""

from __future__ import annotations

from collections.abc import Iterator

from keyturn.scan.shapes import ANCHOR_AUTOMATON, BY_ANCHOR, Shape

# Lower case; searched in a lower-cased copy of the file, once, if the file is not tiny.
KEYWORDS = (b"key", b"token", b"secret", b"passw", b"credential", b"bearer",
            b"authorization")


def shapes_present(data: bytes) -> Iterator[Shape]:
    """The catalogued shapes whose anchor occurs in ``data`` (one pass over it)."""
    found = {index for index, _, _ in ANCHOR_AUTOMATON.find_matches_as_indexes(
        data, overlapping=True)}
    for index in sorted(found):
        yield from BY_ANCHOR[index]


def keyword_lines(data: bytes, lowered: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line that holds a keyword, in order, each once (``lowered``
    is ``data.lower()``, made once per file)."""
    starts: set[int] = set()
    for word in KEYWORDS:
        at = lowered.find(word)
        while at != -1:
            start = lowered.rfind(b"\n", 0, at) + 1
            starts.add(start)
            end = lowered.find(b"\n", at)
            if end == -1:
                break
            at = lowered.find(word, end)  # the rest of this line is covered already
    spans = []
    for start in sorted(starts):
        end = data.find(b"\n", start)
        spans.append((start, len(data) if end == -1 else end))
    return spans
