"""Values that stand in for a key: ``your-api-key-here``, ``xxx``, ``<API_KEY>``, ``${VAR}``.

The doctor reports them (``key_placeholder``) and the scanner ignores them, so both read one
list.
"""

from __future__ import annotations

import re

_PLACEHOLDER_WORDS = frozenset(
    {
        "apikey", "key", "token", "secret", "password", "changeme", "replaceme", "todo",
        "tbd", "fixme", "dummy", "example", "sample", "placeholder", "none", "null", "nil",
        "undefined", "test", "foo", "bar", "foobar", "abc", "abc123", "123", "1234",
        "12345", "123456", "secretkey", "mykey", "myapikey", "yourkey", "yourapikey",
        "yourtoken", "yoursecret", "insertkeyhere", "insertapikeyhere", "pasteyourkeyhere",
        "enteryourkey", "addyourkey", "yourkeyhere", "yourapikeyhere", "apikeyhere",
        "xxx", "sk", "skxxx", "redacted", "hidden", "notset", "unset", "empty", "default",
    }
)
_PLACEHOLDER_PATTERNS = (
    re.compile(r"<[^<>]*>"),  # <your key>, <API_KEY>
    re.compile(r"\[[^\[\]]*\]"),  # [YOUR KEY]
    re.compile(r"\{\{.*\}\}"),  # {{ api_key }} from a template
    re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"),  # an unexpanded $VAR or ${VAR}
    re.compile(r"%[A-Za-z_][A-Za-z0-9_]*%"),  # a Windows %VAR%
    re.compile(r"(?i).*(?:x{6,}|\*{4,}|\.{3,}|…|0{10,}).*"),  # sk-xxxxxxxx, ****, sk-...
    re.compile(r"(?i).*your[-_ .]?(?:own[-_ .]?)?(?:api[-_ .]?)?(?:key|token|secret).*"),
    re.compile(r"(?i)(?:insert|put|paste|enter|add|replace)[-_ .].*(?:key|token|here).*"),
)


def is_placeholder(value: str) -> bool:
    """True for a value that only marks where a key should go."""
    squashed = re.sub(r"[^a-z0-9]", "", value.lower())
    if squashed in _PLACEHOLDER_WORDS or not squashed:
        return True
    return any(p.fullmatch(value) for p in _PLACEHOLDER_PATTERNS)
