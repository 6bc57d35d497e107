"""Search the outcome catalogue: ranked, tolerant of typos, the same everywhere.

``keyturn explain --search`` and the served catalogue (``GET /outcomes?q=``) rank with this
one function, so a word finds the same codes in a terminal and in a browser. Each word of
the query is matched against the words of an entry's code, title, explanation and fix,
weighted in that order (a word of the code or title says more than one of the fix); a word
matches exactly, as the start of a longer word ("expir" finds "expired"), or within one
edit (two for long words: "revokd", "insuficient"). Entries matching more of the query's
words come first, then the better matches. Pure and small: 72 entries are scored per query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from keyturn.outcomes import CATALOGUE, Outcome

# How much a word found in each field counts.
_WEIGHTS = (("code", 8.0), ("title", 5.0), ("explanation", 2.0), ("fix", 1.0))
# Words too common in the catalogue's prose to say anything on their own.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "this",
        "that",
        "to",
        "was",
        "with",
        "not",
        "no",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case words; a code's underscores separate words (``key_expired``)."""
    return _WORD.findall(text.lower())


def _within(a: str, b: str, limit: int) -> bool:
    """Whether ``a`` and ``b`` are at most ``limit`` edits apart (insert, delete,
    substitute, swap two neighbours): Damerau-Levenshtein, cut short past the limit."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return False
        previous2, previous = previous, current
    return previous[-1] <= limit


def _match(term: str, word: str) -> float:
    """How well ``term`` matches ``word``: 1 exact, 0.8 a prefix, 0.6 a typo, else 0."""
    if word == term:
        return 1.0
    if len(term) >= 3 and word.startswith(term):
        return 0.8
    edits = 0 if len(term) < 4 else 1 if len(term) < 8 else 2
    return 0.6 if edits and _within(term, word, edits) else 0.0


class _Index:
    """Each entry's words per field, and every word once: a query word is compared with
    each distinct word of the catalogue once, not once per entry."""

    def __init__(self, catalogue: Mapping[str, Outcome]) -> None:
        self.entries = list(catalogue.values())
        self.fields = [
            [(weight, frozenset(words(getattr(e, name)))) for name, weight in _WEIGHTS]
            for e in self.entries
        ]
        self.vocabulary = frozenset(w for f in self.fields for _, v in f for w in v)
        # About 10 ms for a long word against ~950 words: kept for words asked again.
        self.matches = functools.lru_cache(maxsize=1024)(self._matches)

    def _matches(self, term: str) -> dict[str, float]:
        """Each word ``term`` matches, with how well."""
        found = {}
        for word in self.vocabulary:
            strength = _match(term, word)
            if strength:
                found[word] = strength
        return found


_INDEX = _Index(CATALOGUE)
# A query is a few words: longer ones are cut, so no request makes the server work long.
MAX_TERMS = 8
MAX_TERM = 40


def search(query: str) -> list[Outcome]:
    """The entries ``query`` finds, best first; a whole code (in any case) comes first."""
    wanted = query.strip().lower()
    terms = [w[:MAX_TERM] for w in words(wanted) if w not in _STOP] or words(wanted)
    terms = list(dict.fromkeys(terms))[:MAX_TERMS]
    if not terms:
        return []
    index = _INDEX
    matches = [index.matches(term) for term in terms]
    code = "_".join(words(wanted))
    scored = []
    for order, (outcome, fields) in enumerate(zip(index.entries, index.fields, strict=True)):
        matched, strength = 0, 0.0
        for found in matches:
            best = max(
                (
                    weight * found[w]
                    for weight, vocabulary in fields
                    for w in vocabulary & found.keys()
                ),
                default=0.0,
            )
            if best:
                matched, strength = matched + 1, strength + best
        if matched:
            scored.append(((outcome.code != code, -matched, -strength, order), outcome))
    scored.sort(key=lambda pair: pair[0])
    return [outcome for _, outcome in scored]
