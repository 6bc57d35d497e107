"""Which parts of a file can hold a secret at all? Cheap substring tests before any regex.

``bytes.find`` and Aho-Corasick run at memory speed, a regex does not. Every distinctive
key starts with a literal anchor (``ghp_``, ``sk-ant-``): one pass finds every anchor, so a
file without the anchor never runs that shape's regex; a generic assignment needs a keyword
(``token``, ``secret``, ``bearer``), so
only the lines holding one are matched at all. Most lines of most files end here.
"""

from __future__ import annotations

from collections.abc import Iterator

from ahocorasick_rs import BytesAhoCorasick, Implementation

from keyturn.scan.shapes import ANCHOR_AUTOMATON, BY_ANCHOR, Shape

# Lower case; searched in a lower-cased copy of the file, once, if the file is not tiny.
KEYWORDS = (b"key", b"token", b"secret", b"passw", b"credential", b"bearer",
            b"authorization")
KEYWORD_AUTOMATON = BytesAhoCorasick(list(KEYWORDS), implementation=Implementation.DFA)


def shapes_present(data: bytes) -> Iterator[Shape]:
    """The catalogued shapes whose anchor occurs in ``data`` (one pass over it)."""
    found = {index for index, _, _ in ANCHOR_AUTOMATON.find_matches_as_indexes(
        data, overlapping=True)}
    for index in sorted(found):
        yield from BY_ANCHOR[index]


def keyword_lines(data: bytes, lowered: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line that holds a keyword, in order, each once (``lowered``
    is ``data.lower()``, made once per file): one Aho-Corasick pass, not a search per word."""
    spans = []
    line_end = -1
    for _index, start, _end in KEYWORD_AUTOMATON.find_matches_as_indexes(lowered):
        if start < line_end:
            continue  # the rest of this line is covered already
        line_start = lowered.rfind(b"\n", 0, start) + 1
        found = lowered.find(b"\n", start)
        line_end = len(data) if found == -1 else found
        spans.append((line_start, line_end))
    return spans
