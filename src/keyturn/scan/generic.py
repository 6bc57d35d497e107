"""Secrets that no shape names: a random value assigned to a secret-looking name.

``API_KEY = "..."``, ``"client_secret": "..."``, ``token: ...`` in YAML or a ``.env``, and
``Authorization: Bearer ...``. The name says "secret"; the gates in ``gates.py`` then decide
whether the value is random like a key or a placeholder, an identifier or a path. Where the
name is a provider's documented variable (``DD_API_KEY``, ``MISTRAL_API_KEY``), the
catalogue's shapes for that provider, distinctive or not, name the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from keyturn._providers import PROVIDERS, KeyType, Provider

_SECRET_NAME = re.compile(
    rb"api[_.-]?key|secret|token|passw(?:or)?d|access[_.-]?key|private[_.-]?key"
    rb"|auth[_.-]?key|credentials?"
)
# Every secret-looking name holds one of these (lower case); a line is searched for them
# with bytes.find, and the name is read outwards from each hit: no regex tries every word.
_NAME_ROOTS = (b"key", b"secret", b"token", b"passw", b"credential")
_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_NAME = 128
# What follows a name: `api_key: str = "..."`, `token := "..."`, `secret => '...'`,
# `key = ...`, `"key": ...`, `env["KEY"] = ...`
AFTER_NAME = re.compile(
    rb"['\"]?\]?[ \t]*(?::[ \t]*[A-Za-z_][\w\[\]., |]{0,40}?[ \t]=(?!=)|:=|=>|=(?!=)|:)[ \t]*"
    rb"(?P<quote>['\"`]?)(?P<value>[A-Za-z0-9+/=_.~!@#%^&*:-]{16,1024})"
)
BEARER_VALUE = re.compile(rb"[ \t]+(?P<value>[A-Za-z0-9._~+/=-]{16,2048})")
# `get_env("api_token", "...")`: a quoted name, a comma, then the quoted value (a default).
CALL_ARGUMENT = re.compile(
    rb"['\"][ \t]*,[ \t]*(?P<quote>['\"])(?P<value>[A-Za-z0-9+/=_.~!@#%^&*:-]{16,1024})"
)
# `Authorization: <credential>` with no scheme (or `Token`, `ApiKey`): the header's value is
# the credential itself. `Bearer` and `Basic` have their own readers.
AUTHORIZATION_VALUE = re.compile(
    rb"(?i)['\"]?[ \t]*[:=][ \t]*['\"]?(?:(?:token|apikey|api-key|sswss?)[ \t]+)?"
    rb"(?P<value>(?!(?:bearer|basic|digest|negotiate)\b)[A-Za-z0-9._~+/=-]{16,2048})"
)
# Before a name that starts its line: indentation, or a shell's `export `.
_ALONE_ON_ITS_LINE = re.compile(rb"[ \t]*(?:export[ \t]+)?")
# After an unquoted value: the end of the line, a space or a comment.
_UNQUOTED_END = re.compile(rb"[ \t]*(?:[#;]|$)")

# Names that are about a secret rather than hold one: `token_url`, `secret_name`, `apiKeyId`.
_DESCRIPTIVE = frozenset(
    [
        "url", "uri", "path", "file", "filename", "name", "env", "var", "header", "type",
        "id", "ids", "len", "length", "size", "format", "prefix", "field", "endpoint",
        "ttl", "expiry", "expires", "at", "count", "version", "pattern", "regex", "kind",
        "mode", "dir", "location", "hash", "digest", "checksum", "sha", "store",
        "provider", "cls", "class", "label", "help", "description", "docs"
    ]
)
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_BY_ENV = {env.upper(): provider for provider in PROVIDERS for env in provider.env}

# Files where a value stands bare after its name (`TOKEN=abc`, `token: abc`); in code a bare
# word after `=` is a variable or a call, so there only quoted values count.
_CONFIG_SUFFIXES = frozenset(
    [
        ".env", ".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".toml", ".sh",
        ".bash", ".zsh", ".envrc", ".tfvars", ".npmrc", ".pypirc", ".netrc", ".service"
    ]
)
_CONFIG_NAMES = frozenset({"dockerfile", "containerfile", "procfile", "credentials", "config"})
# Notes and logs hold no code: a line that is nothing but `name = value` there is a value.
_NOTES_SUFFIXES = frozenset([".txt", ".log"])


# Asked of every file scanned: string operations, not a PurePath each time. Paths as
# reported use "/" (walker.items_for).
def _name_and_suffix(path: str) -> tuple[str, str]:
    """The file name, lower-cased, and its suffix as ``PurePath.suffix`` reads it."""
    name = path.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return name, name[dot:] if 0 < dot < len(name) - 1 else ""


def notes_like(path: str) -> bool:
    return _name_and_suffix(path)[1] in _NOTES_SUFFIXES


def config_like(path: str) -> bool:
    name, suffix = _name_and_suffix(path)
    return name.startswith(".env") or suffix in _CONFIG_SUFFIXES or name in _CONFIG_NAMES


@dataclass(frozen=True, slots=True)
class Assignment:
    """A value assigned to a secret-looking name (or sent as a Bearer credential), where it
    is in the file, and the catalogued provider that name belongs to, if any."""

    start: int
    end: int
    value: str
    name: str  # the assigned name, or "Authorization: Bearer"
    provider: Provider | None = None
    key_type: KeyType | None = None


# A name that says its value is not real: `fake_token`, `nonMatchingToken`, `INVALID_KEY`.
_NOT_REAL_NAME = re.compile(
    r"(?i)fake|dummy|example|sample|placeholder|invalid|non_?matching|bogus|wrong|(?:^|_)bad_?"
)
# Keys and tokens are drawn from one alphabet (base62, base64 or its URL-safe form, hex),
# `=` only as base64's closing padding; `:` and `.` join a token's parts. A value of a
# key's or token's name holding any other character (`!`, `$`, `%`, a `=` inside) is a key
# with a typo, a mask or a template, not a key. Passwords and secrets may hold anything.
_KEY_ALPHABET = re.compile(r"[A-Za-z0-9+/_.:~-]+={0,2}")
_PASSWORD_NAME = re.compile(r"(?i)passw|secret|credential")


def value_fits_name(name: str, value: str) -> bool:
    """Whether ``value`` can be what ``name`` says it holds (see _NOT_REAL_NAME, _KEY_ALPHABET)."""
    if _NOT_REAL_NAME.search(name):
        return False
    return bool(_PASSWORD_NAME.search(name)) or bool(_KEY_ALPHABET.fullmatch(value))


def _descriptive(name: str) -> bool:
    words = _WORDS.findall(name)
    return bool(words) and words[-1].lower() in _DESCRIPTIVE


def _bare_name(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip("-").upper()


def _names(line: bytes, offset: int) -> Iterator[tuple[int, int]]:
    """(start, end) in the file of each secret-looking name on the line, once each."""
    lowered = line.lower()
    spans = set()
    for root in _NAME_ROOTS:
        at = lowered.find(root)
        while at != -1:
            start, end = at, at + len(root)
            while start > 0 and line[start - 1] in _NAME_CHARS and at - start < _MAX_NAME:
                start -= 1
            while end < len(line) and line[end] in _NAME_CHARS and end - at < _MAX_NAME:
                end += 1
            spans.add((start, end))
            at = lowered.find(root, end)
    for start, end in sorted(spans):
        if _SECRET_NAME.search(lowered, start, end):
            yield offset + start, offset + end


def _words_ending(line: bytes, offset: int, word: bytes) -> Iterator[int]:
    """File offsets just after each ``word`` (``bearer``, ``authorization``) on the line."""
    lowered = line.lower()
    at = lowered.find(word)
    while at != -1:
        if at == 0 or line[at - 1] not in _NAME_CHARS:
            yield offset + at + len(word)
        at = lowered.find(word, at + len(word))


def assignments(data: bytes, start: int, end: int, config_like: bool,
                notes: bool = False) -> Iterator[Assignment]:
    """Assignments and Bearer credentials on the line ``data[start:end]`` (``notes``: of a
    file of notes or logs, where a line of only `name = value` holds a bare value)."""
    line = data[start:end]
    for name_start, name_end in _names(line, start):
        match = AFTER_NAME.match(data, name_end, end)
        if match is None and name_start > start and data[name_start - 1] in b"'\"":
            match = CALL_ARGUMENT.match(data, name_end, end)
        if match is None:
            continue
        quote = match["quote"]
        value_end = match.end("value")
        if quote:
            if data[value_end : value_end + 1] != quote:
                continue  # the string goes on: prose, a list, a template
        elif not (
            (config_like or (notes and _ALONE_ON_ITS_LINE.fullmatch(data, start, name_start)))
            and _UNQUOTED_END.match(data, value_end, end)
        ):
            # Code refers to variables and calls; config holds bare values, and so does a
            # line that is nothing but `name = value` in a note or a log.
            continue
        name = data[name_start:name_end].decode("ascii")
        if _descriptive(name):
            continue
        value = match["value"].decode("ascii")
        provider = _BY_ENV.get(_bare_name(name))
        key_type = provider.key_type(value) if provider else None
        yield Assignment(match.start("value"), value_end, value, name, provider, key_type)
    for after in _words_ending(line, start, b"bearer"):
        match = BEARER_VALUE.match(data, after, end)
        if match is not None:
            value = match["value"].decode("ascii")
            yield Assignment(match.start("value"), match.end("value"), value,
                            "Authorization: Bearer")
    for after in _words_ending(line, start, b"authorization"):
        match = AUTHORIZATION_VALUE.match(data, after, end)
        if match is not None:
            value = match["value"].decode("ascii")
            yield Assignment(match.start("value"), match.end("value"), value, "Authorization")
