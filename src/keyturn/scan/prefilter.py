"""Which parts of a file can hold a secret at all? Cheap substring tests before any regex.

``bytes.find`` runs at memory speed, a regex does not. Every distinctive key starts with a
literal anchor (``ghp_``, ``sk-ant-``), so a file without the anchor never runs that
shape's regex; a generic assignment needs a keyword (``token``, ``secret``, ``bearer``), so
only the lines holding one are matched at all. Most lines of most files end here.
"""

from __future__ import annotations

from collections.abc import Iterator

from keyturn.scan.shapes import BY_ROOT, Shape

# Lower case; searched in a lower-cased copy of the file, once, if the file is not tiny.
KEYWORDS = (b"key", b"token", b"secret", b"passw", b"credential", b"bearer")


def shapes_present(data: bytes) -> Iterator[Shape]:
    """The catalogued shapes whose anchor occurs in ``data``."""
    for root, shapes in BY_ROOT.items():
        if root in data:
            for shape in shapes:
                if shape.anchor in data:
                    yield shape


def keyword_lines(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line that holds a keyword, in order, each once."""
    lowered = data.lower()
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
