"""Keys made at test time from the catalogues' own patterns, never written down.

A literal credential in a test file would be a leak in its own right (and GitHub's push
protection blocks some shapes), so every key is drawn here: uniformly random characters
for each part of a catalogued pattern, with the checksum computed where the format has one.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from keyturn.keys import BASE62, encode_base62, generate_key
from keyturn.providers import PROVIDERS, KeyType, Provider

_random = secrets.SystemRandom()


def _chars(items: list[tuple[object, object]]) -> list[str]:
    out: list[str] = []
    for op, arg in items:
        if op is sre_c.LITERAL:
            out.append(chr(arg))  # type: ignore[arg-type]
        elif op is sre_c.RANGE:
            lo, hi = arg  # type: ignore[misc]
            out.extend(chr(c) for c in range(lo, hi + 1))
        else:
            raise NotImplementedError(op)
    return out


def _draw(parsed: sre_parse.SubPattern) -> str:
    text = []
    for op, arg in parsed:
        if op is sre_c.LITERAL:
            text.append(chr(arg))
        elif op is sre_c.IN:
            text.append(_random.choice(_chars(arg)))
        elif op is sre_c.MAX_REPEAT:
            low, high, sub = arg
            if high is sre_c.MAXREPEAT:
                low = max(low, 12)
                high = low + 30
            text.extend(_draw(sub) for _ in range(_random.randint(low, high)))
        elif op is sre_c.SUBPATTERN:
            text.append(_draw(arg[-1]))
        elif op is sre_c.BRANCH:
            text.append(_draw(_random.choice(arg[1])))
        else:
            raise NotImplementedError(op)
    return "".join(text)


def from_pattern(pattern: re.Pattern[str]) -> str:
    """A uniformly random string the pattern fully matches."""
    value = _draw(sre_parse.parse(pattern.pattern))
    assert pattern.fullmatch(value), (pattern.pattern, value)
    return value


def github_checksummed(prefix: str) -> str:
    body = "".join(_random.choice(BASE62) for _ in range(30))
    return prefix + body + encode_base62(zlib.crc32(body.encode()), 6)


def make_key(key_type: KeyType) -> str:
    """A key of this type, with a valid checksum where the type has one."""
    if key_type.checksum == "github-crc32":
        return github_checksummed(key_type.prefix)
    assert not key_type.checksum, f"teach keygen the {key_type.checksum} checksum"
    return from_pattern(key_type.pattern)


@dataclass(frozen=True)
class Planted:
    provider_id: str  # "keyturn" for keyturn's own keys
    type_name: str
    key: str


SECRET_TYPES: list[tuple[Provider, KeyType]] = [
    (p, t) for p in PROVIDERS for t in p.key_types if t.distinctive and t.secret
]
IDENTIFIER_TYPES: list[tuple[Provider, KeyType]] = [
    (p, t) for p in PROVIDERS for t in p.key_types if t.distinctive and not t.secret
]
KEYTURN_PREFIXES = ["kt_live", "kt_test", "acme_live", "a", "shop_9_prod", "ghp", "sk_live"]


def provider_keys() -> list[Planted]:
    """One key of every catalogued distinctive secret type."""
    return [Planted(p.id, t.name, make_key(t)) for p, t in SECRET_TYPES]


def keyturn_keys() -> list[Planted]:
    return [Planted("keyturn", prefix, generate_key(prefix)) for prefix in KEYTURN_PREFIXES]


def identifiers() -> list[str]:
    """Distinctive shapes that are not secrets (Stripe pk_, Twilio SIDs): never findings."""
    return [from_pattern(t.pattern) for _, t in IDENTIFIER_TYPES]


def broken_checksum(key: str) -> str:
    """The key with its last character changed: shape intact, checksum wrong."""
    last = key[-1]
    return key[:-1] + BASE62[(BASE62.index(last) + 1) % 62]


def near_misses() -> list[str]:
    """Strings a careless scanner reports: wrong checksum, wrong length, placeholders, docs."""
    misses = []
    for _, key_type in SECRET_TYPES:
        if key_type.checksum:
            misses.append(broken_checksum(make_key(key_type)))
    for prefix in ("kt_live", "acme_test"):
        key = generate_key(prefix)
        misses += [broken_checksum(key), key[:-1], key + "Q"]
    misses += [
        github_checksummed("ghp_")[:-1],  # one character short
        github_checksummed("ghp_") + "7",  # one too many
        "sk-proj-" + "x" * 40,
        "sk_live_" + "X" * 24,
        "ghp_" + "x" * 36,
        "sk-ant-api03-" + "x" * 93 + "AA",
        "AIza" + "0123456789" * 3 + "ABCDE",
        # keyturn's own specification examples (docs/key-format.md), valid checksums and all
        "kt_live_" + "0123456789ABCDEFGHIJabcdefghij" + "1n1GV2",
        "acme_test_" + "z" * 30 + "0XNw4r",
        # Stripe's documentation test key, which every reader of its API reference sees
        "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_EXAMPLEexample1234567890",
    ]
    return misses
