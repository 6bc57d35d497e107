"""Key shapes to look for, taken from the catalogues: keyturn's own format and providers'.

Nothing here is a second table of regexes: each provider shape is a ``[[provider.key_type]]``
of ``providers.toml`` that is distinctive (the shape alone names its issuer) and secret (an
account id or a publishable key is meant to be seen). Each is compiled once for bytes, with
its literal prefix as the anchor the prefilter looks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from re import _parser as sre_parse  # type: ignore[attr-defined]

from ahocorasick_rs import BytesAhoCorasick, Implementation

from keyturn._providers import PROVIDERS, KeyType, Provider

# A key ends where its characters end: a longer run is another (or a damaged) string.
_KEY_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_TRAILING = rb"(?![A-Za-z0-9_-])"
LEFT_STOP = frozenset(_KEY_CHARS)


@dataclass(frozen=True, slots=True)
class Shape:
    """One catalogued key type, ready to search bytes for."""

    provider: Provider
    key_type: KeyType
    anchor: bytes
    regex: re.Pattern[bytes]
    rank: int  # catalogue order: on overlap, the first entry names the key

    @property
    def label(self) -> str:
        return f"{self.provider.name} {self.key_type.name}"


def _literal_head(source: str) -> str:
    """The literal text a regex source starts with (``SG\\.`` is ``SG.``)."""
    head: list[str] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source) and not source[i + 1].isalnum():
            head.append(source[i + 1])
            i += 2
        elif char in "\\[](){}.*+?|^$":
            break
        else:
            head.append(char)
            i += 1
    # A quantifier binds to the last character, which is then optional or repeated.
    return "".join(head[:-1] if source[i : i + 1] in ("*", "+", "?", "{") else head)


def _shapes() -> tuple[Shape, ...]:
    found: list[Shape] = []
    for provider in PROVIDERS:
        for key_type in provider.key_types:
            if not (key_type.distinctive and key_type.secret):
                continue
            source = key_type.pattern.pattern
            if not key_type.prefix or not _literal_head(source).startswith(key_type.prefix):
                # A distinctive shape with no literal prefix would be searched everywhere;
                # tests/scan insists the catalogue gives every one a prefix.
                raise ValueError(f"{provider.id}: {key_type.name}: no literal prefix")
            regex = re.compile(source.encode("ascii") + _TRAILING)
            found.append(Shape(provider, key_type, key_type.prefix.encode(), regex, len(found)))
    return tuple(found)


SHAPES: tuple[Shape, ...] = _shapes()

# Every anchor in one Aho-Corasick automaton: one pass over a file tells which shapes can
# occur in it, and a file that holds no anchor never runs a shape's regex.
ANCHORS: tuple[bytes, ...] = tuple(sorted({shape.anchor for shape in SHAPES}))
BY_ANCHOR: tuple[tuple[Shape, ...], ...] = tuple(
    tuple(shape for shape in SHAPES if shape.anchor == anchor) for anchor in ANCHORS
)
ANCHOR_AUTOMATON = BytesAhoCorasick(list(ANCHORS), implementation=Implementation.DFA)

# keyturn keys: any legal prefix, then "_" and 36 base62 characters (docs/key-format.md).
# The regex finds the tail; the prefix is read leftwards and the checksum decides.
KEYTURN_TAIL = re.compile(rb"_[0-9A-Za-z]{36}(?![0-9A-Za-z_])")
PREFIX_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")

# A value that starts with one of these prefixes is the catalogue's to judge: if no shape
# claimed it, it is a truncated key, a placeholder or an identifier, not a generic secret.
# Three-character prefixes (``sk-``, ``hf_``) are too common in other values to decide.
DECIDING_PREFIXES = tuple(
    sorted(
        {
            t.prefix
            for p in PROVIDERS
            for t in p.key_types
            if t.distinctive and len(t.prefix) >= 4
        }
    )
)

# A distinctive shape of one fixed length, by prefix: a value with the prefix and a few
# characters more or fewer is that key with a typo or cut short, whatever a peer's looser
# rule for the prefix says (one of another length, or of the same length in another
# alphabet, is another form of the provider's key).
TYPO_REACH = 3


def _fixed_lengths() -> dict[str, frozenset[int]]:
    found: dict[str, set[int]] = {}
    for provider in PROVIDERS:
        for key_type in provider.key_types:
            low, high = sre_parse.parse(key_type.pattern.pattern).getwidth()
            # As for DECIDING_PREFIXES: a three-character prefix (`sk-`) starts other
            # providers' keys too, of other lengths.
            if key_type.distinctive and low == high and len(key_type.prefix) >= 4:
                found.setdefault(key_type.prefix, set()).add(low)
    return {prefix: frozenset(lengths) for prefix, lengths in found.items()}


FIXED_LENGTHS: dict[str, frozenset[int]] = _fixed_lengths()


def near_miss_of_a_shape(value: str) -> bool:
    """``value`` starts like a fixed-length catalogued key and misses its length by a few."""
    size = len(value)
    return any(
        value.startswith(prefix) and size not in lengths
        and any(abs(size - length) <= TYPO_REACH for length in lengths)
        for prefix, lengths in FIXED_LENGTHS.items()
    )
