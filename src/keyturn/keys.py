"""The keyturn key format: generate, parse, hash and mask.

A key is ``<prefix>_<body><checksum>`` (see ``docs/key-format.md``). The checksum lets
anyone reject a typo or a truncated key offline, before any store is consulted, and lets a
scanner tell a real keyturn key from a random string of the same shape.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple
from urllib.parse import unquote_plus

from keyturn.errors import InvalidValue

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 30  # 30 base62 characters carry 178 bits, above the 160 the spec demands
CHECKSUM_LENGTH = 6  # 62**6 > 2**32, so every CRC32 fits
DEFAULT_PREFIX = "kt_live"
TEST_PREFIX = "kt_test"
MAX_PREFIX_LENGTH = 32

_PREFIX_RE = re.compile(r"[a-z0-9_]{1,32}")
_BASE62_SET = frozenset(BASE62)
_TAIL_LENGTH = BODY_LENGTH + CHECKSUM_LENGTH


class KeyProblem(Enum):
    """Why a string is not a well-formed key; each maps to an outcome code."""

    WRONG_PREFIX = "wrong_prefix"
    WRONG_LENGTH = "wrong_length"
    ILLEGAL_CHARACTER = "illegal_character"
    CHECKSUM_MISMATCH = "checksum_mismatch"


class ParsedKey(NamedTuple):
    prefix: str
    body: str
    checksum: str


@dataclass(frozen=True, slots=True)
class KeyDefect:
    """A parse failure: the problem and a sentence a human can act on (never the key)."""

    problem: KeyProblem
    detail: str


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is legal, else raise ``InvalidValue`` saying why."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise InvalidValue(
            f"invalid key prefix {prefix!r}: use 1-{MAX_PREFIX_LENGTH} characters of a-z, "
            "0-9 and _",
            "prefix",
        )
    return prefix


def encode_base62(number: int, width: int) -> str:
    """Most significant digit first, left-padded with ``0`` to ``width``."""
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


# Every two-digit base62 string by value: the checksum is three table look-ups, not a loop,
# because it runs on every request.
_PAIRS = tuple(a + b for a in BASE62 for b in BASE62)
_PAIR_SPAN = 62 * 62


_HIGH_SPAN = _PAIR_SPAN * _PAIR_SPAN


def checksum(text: str) -> str:
    """CRC32 of the UTF-8 ``<prefix>_<body>``, in six base62 characters. (``//`` and ``%``
    rather than ``divmod``: no tuple built and unpacked, a fifth off every cache miss's
    checksum.)"""
    crc = zlib.crc32(text.encode())
    pairs, span = _PAIRS, _PAIR_SPAN
    return pairs[crc // _HIGH_SPAN] + pairs[crc // span % span] + pairs[crc % span]


def shape_pattern(prefixes: frozenset[str]) -> re.Pattern[str]:
    """One regex for a well-formed key of any of ``prefixes``: the hot path's first check
    (cheaper than slicing and testing the parts: ``str.isalnum`` looks each character up
    in the Unicode tables)."""
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"(?:{alternatives})_[0-9A-Za-z]{{{_TAIL_LENGTH}}}")


_BODY_SPAN = 62**BODY_LENGTH


def generate_key(prefix: str = DEFAULT_PREFIX) -> str:
    """A new key: ``secrets``-random body with its checksum. Show it once; store its hash."""
    validate_prefix(prefix)
    # One uniform number below 62**30, written in base62: exactly the distribution of 30
    # independent ``secrets.choice`` draws, at one call to the OS's random source instead
    # of 30 (those were a third of a bulk creation's time).
    body = encode_base62(secrets.randbelow(_BODY_SPAN), BODY_LENGTH)
    head = f"{prefix}_{body}"
    return head + checksum(head)


def parse_key(text: str, prefixes: frozenset[str] | None = None) -> ParsedKey | KeyDefect:
    """Split ``text`` into its parts, or say precisely why it is not a key.

    ``prefixes`` restricts which issuers are accepted; ``None`` accepts any legal prefix.
    The checks run cheapest first so garbage costs almost nothing.
    """
    prefix, sep, tail = text.rpartition("_")
    if prefixes is None or prefix not in prefixes:
        if not sep or not _PREFIX_RE.fullmatch(prefix):
            return KeyDefect(
                KeyProblem.WRONG_PREFIX, "the key does not start with a keyturn prefix"
            )
        if prefixes is not None:
            accepted = ", ".join(f"'{p}_'" for p in sorted(prefixes))
            return KeyDefect(
                KeyProblem.WRONG_PREFIX,
                f"keys with prefix '{prefix}_' are not accepted here (accepted: {accepted})",
            )
    if len(tail) != _TAIL_LENGTH:
        short = "short" if len(tail) < _TAIL_LENGTH else "long"
        return KeyDefect(
            KeyProblem.WRONG_LENGTH,
            f"the part after '{prefix}_' has {len(tail)} characters, {_TAIL_LENGTH} expected "
            f"(too {short}: was the key cut off or pasted twice?)",
        )
    if not _BASE62_SET.issuperset(tail):
        return KeyDefect(
            KeyProblem.ILLEGAL_CHARACTER,
            "the key contains a character outside 0-9, A-Z and a-z after its prefix",
        )
    body = tail[:BODY_LENGTH]
    given = tail[BODY_LENGTH:]
    if checksum(f"{prefix}_{body}") != given:  # the checksum is public: no timing to hide
        return KeyDefect(
            KeyProblem.CHECKSUM_MISMATCH,
            "the key's checksum does not match: a character was mistyped, changed or lost",
        )
    return ParsedKey(prefix, body, given)


def hash_key(key: str, pepper: bytes | None = None) -> str:
    """The only form in which a key is stored: SHA-256, or HMAC-SHA256 keyed by a pepper.

    Keys carry 178 random bits, so a fast hash is safe here; a password hasher would add
    100+ ms to every request and buy nothing against a brute force that is already hopeless.
    """
    return key_hasher(pepper)(key)


# SHA-256 as CPython builds it in (``_sha2`` from 3.12, ``_sha256`` before): the same
# function as OpenSSL's, without OpenSSL 3's per-object provider lookup, which costs a
# cached verify about a microsecond (a quarter of its hashing). hashlib falls back so too.
try:
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.11
    try:
        from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:  # a build without it: hashlib's
        _sha256 = hashlib.sha256  # type: ignore[assignment,unused-ignore]
# The same, for a hot path that hashes in line (``KeyManager.verify_asgi``, no pepper).
builtin_sha256: Callable[[bytes], hashlib._Hash] = _sha256

_BLOCK = 64  # SHA-256's block size, for HMAC's padded key
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=16)
def key_hasher(pepper: bytes | None = None) -> Callable[[str], str]:
    """``hash_key`` with the pepper bound (``key_bytes_hasher``, of the key's UTF-8)."""
    digest = key_bytes_hasher(pepper)
    return lambda key: digest(key.encode())


@functools.lru_cache(maxsize=16)
def key_bytes_hasher(pepper: bytes | None = None) -> Callable[[bytes], str]:
    """``hash_key`` of a key as it arrived (ASCII bytes), with the pepper bound, for the
    hot path: the ASGI fast path hashes the header's bytes, never decoding them for a hit.

    HMAC-SHA256 (RFC 2104) with its two padded-key states computed once: each hash then
    copies them, where ``hmac.new`` would key a new HMAC object through OpenSSL on every
    request (about 10 µs, more than the rest of a cached verify). The result is exactly
    ``hmac.new(pepper, key, sha256)``'s (a property test holds them equal).
    """
    new: Callable[[bytes], hashlib._Hash] = _sha256
    if pepper is None:
        return lambda key: new(key).hexdigest()
    block = new(pepper).digest() if len(pepper) > _BLOCK else pepper
    block = block.ljust(_BLOCK, b"\0")
    inner, outer = new(block.translate(_IPAD)), new(block.translate(_OPAD))

    def peppered(key: bytes) -> str:
        mac = inner.copy()
        mac.update(key)
        result = outer.copy()
        result.update(mac.digest())
        return result.hexdigest()

    return peppered


def display_parts(key: str) -> tuple[str, str, str]:
    """(prefix, start, end) kept beside the hash so people can recognise a key."""
    prefix, _, tail = key.rpartition("_")
    return prefix, tail[:4], tail[-4:]


def mask(key: str) -> str:
    """``kt_live_4fQz…9aB1``: enough to recognise a key, never enough to use it.

    A string too short to keep 8 characters hidden shows no characters of its secret part.
    """
    prefix, sep, tail = key.rpartition("_")
    if not sep or not _PREFIX_RE.fullmatch(prefix):
        prefix, sep, tail = "", "", key
    return mask_after(prefix + sep, tail)


def mask_after(shown: str, secret: str) -> str:
    """``shown`` as it is, then the first and last four characters of ``secret`` if at least
    8 stay hidden between them, else none: the one masking rule for keys, whoever's they are
    (keyturn's own here, any provider's in ``keyturn scan``)."""
    if len(secret) < 16:
        return f"{shown}…"
    return f"{shown}{secret[:4]}…{secret[-4:]}"


def mask_parts(prefix: str, start: str, end: str) -> str:
    """The mask of a stored key, rebuilt from its display parts."""
    return f"{prefix}_{start}…{end}"


# A key in text: a prefix, "_" and a base62 run (as ``keyturn._redact`` finds them).
_KEY_IN_TEXT = re.compile(r"[a-z0-9][a-z0-9_]{0,31}_[0-9A-Za-z]{30,}")
# Why a value holding a key is refused, wherever keyturn would store it as text.
KEY_AS_TEXT = (
    "this holds a keyturn key, and a key is never stored as text (keyturn keeps only its "
    "hash, and names, scopes and metadata are shown and logged): give the key's id "
    "(key_...) or a name instead, and if the key was shared, rotate it"
)


def holds_key(text: str) -> bool:
    """Whether ``text`` holds a whole keyturn key of any deployment (its checksum right),
    pasted where a name, scope or id belongs. A run of key shape is tried from each place
    its prefix could start: text glued in front (``apikey_kt_live_...``, ``xkt_live_...``)
    joins the run, and read whole it has no valid checksum."""
    if len(text) <= _TAIL_LENGTH:
        return False
    for found in _KEY_IN_TEXT.finditer(text):
        run = found[0]
        for start in range(run.rindex("_")):
            if isinstance(parse_key(run[start:]), ParsedKey):
                return True
    return False


def url_holds_key(url: str) -> bool:
    """``holds_key`` for a URL: read as written and percent-decoded (once or twice), as
    whoever follows or logs it may read it (``%5F`` is ``_``)."""
    for _ in range(3):
        if holds_key(url):
            return True
        decoded = unquote_plus(url)
        if decoded == url:
            return False
        url = decoded
    return False
