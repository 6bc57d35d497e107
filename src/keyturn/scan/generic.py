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
from pathlib import PurePath

from keyturn.providers import PROVIDERS, KeyType, Provider

_SECRET_NAME = (
    rb"api[_.-]?key|secret|token|passw(?:or)?d|access[_.-]?key|private[_.-]?key"
    rb"|auth[_.-]?key|credentials?"
)
ASSIGNMENT = re.compile(
    rb"(?i)(?<![\w.-])(?P<name>[\w.-]*(?:" + _SECRET_NAME + rb")[\w.-]*)['\"]?\]?"
    # `api_key: str = "..."`, `token := "..."`, `secret => '...'`, `key = ...`, `key: ...`
    rb"[ \t]*(?::[ \t]*[A-Za-z_][\w\[\]., |]{0,40}?[ \t]=(?!=)|:=|=>|=(?!=)|:)[ \t]*"
    rb"(?P<quote>['\"`]?)(?P<value>[A-Za-z0-9+/=_.~!@#%^&*:-]{16,1024})"
)
BEARER = re.compile(rb"(?i)\bbearer[ \t]+(?P<value>[A-Za-z0-9._~+/=-]{16,2048})")
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


def config_like(path: str) -> bool:
    name = PurePath(path).name.lower()
    return (
        name.startswith(".env")
        or PurePath(name).suffix in _CONFIG_SUFFIXES
        or name in _CONFIG_NAMES
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int
    end: int
    value: str
    name: str  # the assigned name, or "Authorization: Bearer"
    provider: Provider | None = None
    key_type: KeyType | None = None


def _descriptive(name: str) -> bool:
    words = _WORDS.findall(name)
    return bool(words) and words[-1].lower() in _DESCRIPTIVE


def _bare_name(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip("-").upper()


def candidates(data: bytes, start: int, end: int, config_like: bool) -> Iterator[Candidate]:
    """Assignments and Bearer credentials on the line ``data[start:end]``."""
    for match in ASSIGNMENT.finditer(data, start, end):
        quote = match["quote"]
        value_end = match.end("value")
        if quote:
            if data[value_end : value_end + 1] != quote:
                continue  # the string goes on: prose, a list, a template
        elif not (config_like and _UNQUOTED_END.match(data, value_end, end)):
            continue  # code refers to variables and calls; only config holds bare values
        name = match["name"].decode("ascii", "replace")
        if _descriptive(name):
            continue
        value = match["value"].decode("ascii")
        provider = _BY_ENV.get(_bare_name(name))
        key_type = provider.key_type(value) if provider else None
        yield Candidate(match.start("value"), value_end, value, name, provider, key_type)
    for match in BEARER.finditer(data, start, end):
        value = match["value"].decode("ascii")
        yield Candidate(match.start("value"), match.end("value"), value, "Authorization: Bearer")
