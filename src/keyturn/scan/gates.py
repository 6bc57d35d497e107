"""Is a candidate random enough to be a real secret? Placeholders and examples are not.

Shapes alone catch ``sk_live_xxxxxxxxxxxx`` and the test vectors in a specification (which
even carry valid checksums). A real key is drawn uniformly at random, so its neighbouring
characters rarely repeat or count up, it spells no word like ``example``, and a generic
value has the entropy and the mix of characters a password manager would give it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter

from keyturn._placeholders import is_placeholder

# Words a template or a document puts in a fake key. Six letters or more (``dummy`` aside),
# so a random 40-character key spells one by chance about once in 10**7.
_MARKERS = re.compile(r"(?i)example|sample|placeholder|changeme|redacted|dummy|x{8,}|(.)\1{7,}")
# For a value assigned to a secret-looking name, which is not random by construction, the
# shorter words of hand-written stand-ins count too.
_GENERIC_MARKERS = re.compile(
    r"(?i)example|sample|placeholder|change.?me|redacted|dummy|fake|your|test|secret|passw"
    r"|token|api.?key|insecure|xxxx|(.)\1{4,}"
)
_NOT_A_VALUE = re.compile(r"://|\$\{|\$\(|\{\{|\}\}|%\(|[<>]|^[/.~$%{]")

# SHA-256 of keys published in documentation, which are not anyone's secret: a digest
# rather than the key, so this file is no scanner's finding either.
_DOCUMENTATION_EXAMPLES = frozenset(
    {
        # Stripe's API reference test-mode secret key, shown to every reader of the docs.
        "2cafc0970149a84f3b9e62eaf169f36f59907a3b3e31f7b82e68c69cd27f7326",
    }
)


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character distribution."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


# The alphabet in order: a person typing a stand-in spells it, a draw of 26 letters does
# once in 26**26.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def _spells_alphabet(text: str) -> bool:
    return _ALPHABET in text.lower()


def looks_patterned(text: str) -> bool:
    """Half the neighbours repeat or count up or down (``aaaa``, ``0123ABCD``), or the
    alphabet is spelt in order anywhere in it: typed, not drawn.

    A uniformly random base62 string has about 5% such neighbours and hexadecimal about 19%.
    """
    steps = sum(1 for a, b in itertools.pairwise(text) if abs(ord(a) - ord(b)) <= 1)
    return steps * 2 >= len(text) - 1 or _spells_alphabet(text)


def is_documentation_example(key: str) -> bool:
    return hashlib.sha256(key.encode()).hexdigest() in _DOCUMENTATION_EXAMPLES


def stand_in(key: str, random_part: str) -> bool:
    """A key (``random_part`` is what follows its prefix) that only marks where one goes:
    a placeholder, a word like ``example`` in it, a run of one character, a documented key.
    Nobody's secret, whatever its shape."""
    return bool(
        _MARKERS.search(random_part) or is_placeholder(key) or is_documentation_example(key)
    )


def random_enough(key: str, random_part: str) -> bool:
    """A distinctive key that is no stand-in and does not count up like a typed one."""
    return not (looks_patterned(random_part) or stand_in(key, random_part))


_DOCUMENT_WORDS = re.compile(r"(?i)example|sample|placeholder|changeme|redacted|dummy")


def structured_secret_ok(secret: str) -> bool:
    """A secret of a rule's shape that is no placeholder or documentation example.

    Lighter than ``random_enough``: a rule's shape may itself repeat a character (Dropbox's
    long-lived tokens hold ten ``A``; base64 of zero bytes is ``AAAA`` in a PEM block), so a
    run of one character is no sign of a stand-in here; counting and words are.
    """
    return not (structured_stand_in(secret) or typed_look(secret))


_RUN = re.compile(r"(.)\1+")


def mostly_one_character(secret: str) -> bool:
    """Most of the value is one character repeated (``da2-aaaa…``, a bech32 key of ``qqqq…``):
    a stand-in. A run inside a real shape (Dropbox's ten ``A``) is a small part of it."""
    longest = max((m.end() - m.start() for m in _RUN.finditer(secret)), default=1)
    return longest * 2 > len(secret)


def structured_stand_in(secret: str) -> bool:
    """A rule's secret that is a placeholder or a documentation example as a whole."""
    return bool(
        _DOCUMENT_WORDS.search(secret) or is_placeholder(secret)
        or is_documentation_example(secret) or mostly_one_character(secret)
    )


def typed_look(secret: str) -> bool:
    """A value that counts up or repeats like one a person typed (``abc123…``): a test key,
    or a real one somebody made up. Past 100 characters a key's own structure (base64 of
    zero bytes) repeats too, so longer values are judged by the alphabet alone."""
    return looks_patterned(secret) if len(secret) <= 100 else _spells_alphabet(secret)


_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID_LAYOUT = re.compile(r"\w{8}-\w{4}-\w{4}-\w{4}-\w{12}", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def malformed_encoding(value: str) -> bool:
    """A value that breaks the encoding it is written in: hexadecimal of an odd length (hex
    encodes whole bytes, two digits each), or the 8-4-4-4-12 layout of a UUID with a
    character that is no hex digit. A generator writes neither; a typo or a cut does."""
    if _HEX.fullmatch(value):
        return len(value) % 2 == 1
    return bool(_UUID_LAYOUT.fullmatch(value)) and not _UUID.fullmatch(value)


def class_changes(text: str) -> float:
    """Share of neighbours that switch between digit, upper case, lower case and symbol."""

    def kind(c: str) -> int:
        return 0 if c.isdigit() else 1 if c.isupper() else 2 if c.islower() else 3

    kinds = [kind(c) for c in text]
    return sum(a != b for a, b in itertools.pairwise(kinds)) / max(len(text) - 1, 1)


def _least_class_changes(value: str) -> float:
    """A long value of high entropy drawn from lower case and digits switches class less
    often than base62 (about 40% of neighbours, and a third less for one draw in ten):
    its entropy already says it is random, so fewer switches are asked of it."""
    return 0.2 if len(value) >= 24 and shannon_entropy(value) >= 4.0 else 0.3


def plausible_secret(value: str) -> bool:
    """A value assigned to a secret-looking name that a generator, not a person, wrote.

    Real keys mix digits and letters and switch between them often (about 60% of
    neighbours in base62, 47% in hexadecimal); words, identifiers and paths do not.
    """
    return (
        16 <= len(value) <= 1024
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and not _NOT_A_VALUE.search(value)
        and shannon_entropy(value) >= 3.0
        and class_changes(value) >= _least_class_changes(value)
        and not looks_patterned(value)
        and not malformed_encoding(value)
        and not _GENERIC_MARKERS.search(value)
        and not is_placeholder(value)
        and not is_documentation_example(value)
    )


# A password is a person's choice, so a word or a weak one is still somebody's password
# (``P@ssw0rd!``, ``postgres``): only a template or the word for a password stands in.
_PASSWORD_STAND_INS = frozenset({
    "password", "pass", "passwd", "pwd", "secret", "changeme", "yourpassword", "mypassword",
    "dbpassword", "redacted", "hidden", "none", "null", "empty",
})
_TEMPLATE = re.compile(
    r"<[^<>]*>|\$\{[A-Za-z_]\w*\}|^\$[A-Za-z_]\w*$|\{\{.*\}\}|\{[A-Za-z_]\w*\}|%\(?\w*\)?s|#\{.*\}|\.{3}|…"
    r"|^(.)\1*$"
)


def password_stand_in(value: str) -> bool:
    """A password field holding a template (``<...>``, ``${DB_PASSWORD}``, ``%s``), a run of
    one character (``****``) or the word for a password: nobody's password."""
    squashed = re.sub(r"[^a-z0-9]", "", value.lower())
    return squashed in _PASSWORD_STAND_INS or bool(_TEMPLATE.search(value))
