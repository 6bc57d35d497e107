"""Mask keys in anything the server writes down about a request, in every form they travel.

Headers are never logged as such, but what is logged (path, query, the original URI a proxy
forwards, an error message, a traceback) can still carry a key: someone pastes one into a
URL, a proxy forwards a ``Referer``, an exception quotes a header. A key is not always
written plainly either, so each of these is masked:

- a key as it is (``kt_live_…``), wherever it stands;
- a key percent-encoded, whole or in part, once or several times (``kt%5Flive%5F…``,
  ``%255F``), or plus-encoded as a form field;
- a key JSON-escaped (``kt\\u005flive…``, ``\\/``);
- a key inside base64 (``Authorization: Basic base64(user:key)``, base64url cookies);
- every value of a credential query parameter (``api_key=…``), whatever it looks like,
  its name encoded or not, and in a URL nested inside another parameter's value.

Masking keeps a key recognisable (``kt_live_4fQz…9aB1``), never usable. Text that holds
none of these passes unchanged, and short text costs one length test.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus

from keyturn.keys import mask

# Any keyturn-shaped key: a prefix, "_", then at least 30 base62 characters. Deliberately
# wider than the configured prefixes, so a key of another deployment is masked too.
_KEY_SHAPED = re.compile(r"[a-z0-9][a-z0-9_]{0,31}_[0-9A-Za-z]{30,}")
SHORTEST_KEY = 32  # shorter text cannot hold one: skip the rest (most paths are short)
# A stretch of text an encoded key could hide in: URL, JSON-escape and base64 characters.
_RUN = re.compile(r"[0-9A-Za-z_%\\+/=.\-]{32,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{40,}={0,2}")
_JSON_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\(/)")
_PAIR_SEPARATORS = re.compile(r"([&;])")
_DEPTH = 3  # layers of encoding undone: enough for any honest double encoding

# Where the words of a name or a value meet: ``MY_SERVICE_TOKEN_V2``, ``2024-01-01T00:00``.
_WORD_BREAK = re.compile(r"[_\-:]")
_RANDOM_LENGTH = 16  # a random secret is at least this long; few words are


def key_shaped(run: str) -> bool:
    """Whether ``run`` (text without spaces) may be a random secret: 16 characters or more
    with letters and digits, or both cases of letters, that are not words joined by ``_``,
    ``-`` or ``:`` (each shorter than 16 and in one case or capitalised:
    ``MY_SERVICE_TOKEN_V2``, ``2024-01-01T00:00:00``) nor camel-case words. Hex, base62
    and base64 keys all are; variable names, numbers and dates are not. The one rule for
    every place that must not quote a key typed where something else belongs (the
    doctor's usage errors). Not a filter in front of the scan's detectors: short keys and
    keys of letters alone are not key-shaped."""
    if len(run) < _RANDOM_LENGTH or not any(c.isalpha() for c in run):
        return False
    if not any(c.isdigit() for c in run) and (run.isupper() or run.islower()):
        return False
    return not all(_is_word(part) for part in _WORD_BREAK.split(run))


def holds_uuid(run: str) -> bool:
    """Whether ``run`` holds a UUID (8-4-4-4-12 hex digits, either case), whose dashes
    make its pieces read as words to ``key_shaped``. Some keys are UUIDs (Heroku's API
    keys), so text quoting what a user typed masks one; ``key_shaped`` itself leaves them
    out, as file and record names are UUIDs everywhere and hold no key the scanner finds."""
    return _UUID.search(run) is not None


_UUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")


def _is_word(part: str) -> bool:
    """Words of a name: short, in one case or capitalised (``TOKEN``, ``v2``, ``Api``), or
    words run together in camel case at any length (``MyServiceApiToken``)."""
    if _CAMEL_CASE.fullmatch(part):
        return True
    cased = part.isupper() or part.islower() or part.istitle()
    return len(part) < _RANDOM_LENGTH and (cased or not any(c.isalpha() for c in part))


# Each capital begins a lower-case word: ``MyServiceApiToken2``, ``accessToken``.
_CAMEL_CASE = re.compile(r"[A-Z]?[a-z]+(?:[A-Z][a-z]+)*[0-9]{0,2}")


def _mask_match(match: re.Match[str]) -> str:
    return mask(match.group(0))


def _unescape_json(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16)) if match.group(1) else "/"


def decoded(text: str, plus: bool = False) -> str:
    """``text`` with up to ``_DEPTH`` layers of percent- and JSON-escaping undone."""
    for _ in range(_DEPTH):
        before = text
        if "%" in text:
            text = unquote_plus(text) if plus else unquote(text)
        if "\\" in text:
            text = _JSON_ESCAPE.sub(_unescape_json, text)
        if text == before:
            break
    return text


def _from_base64(token: str) -> str:
    """The text a base64 (or base64url) token stands for, or ``""``."""
    padded = token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(padded).decode("latin-1")
        except (binascii.Error, ValueError):
            continue
    return ""


def _mask_encoded(match: re.Match[str]) -> str:
    """A run of URL/JSON/base64 text: masked in its decoded form if that holds a key."""
    run = match.group(0)
    plain = decoded(run)
    if plain != run and _KEY_SHAPED.search(plain):
        return _KEY_SHAPED.sub(_mask_match, plain)
    return _BASE64.sub(_mask_base64, run)


def _mask_base64(match: re.Match[str]) -> str:
    token = match.group(0)
    inner = _from_base64(token)
    if inner and _KEY_SHAPED.search(decoded(inner)):
        return _KEY_SHAPED.sub(_mask_match, decoded(inner))
    return token


def mask_text(value: str) -> str:
    """``value`` with every key masked, however it is encoded (see the module docstring)."""
    if len(value) < SHORTEST_KEY:
        return value
    value = _KEY_SHAPED.sub(_mask_match, value)
    if "%" in value or "\\" in value or _BASE64.search(value):
        value = _RUN.sub(_mask_encoded, value)
    return value


class Redactor:
    """Masks keys (``text``), and credential query parameters too (``uri``)."""

    __slots__ = ("_param", "_params")

    def __init__(self, query_params: Iterable[str]) -> None:
        self._params = frozenset(p.lower() for p in query_params)
        names = "|".join(re.escape(p) for p in sorted(self._params, key=len, reverse=True))
        # name=value pairs of credential parameters, matched case-insensitively.
        self._param = re.compile(rf"(?i)(^|[?&;])({names})=([^&;#]*)") if names else None

    def _mask_param(self, match: re.Match[str]) -> str:
        value = unquote(match.group(3))
        return f"{match.group(1)}{match.group(2)}={mask(value)}"

    def text(self, value: str) -> str:
        """``value`` with every key masked, in whatever form it is written."""
        return mask_text(value)

    def uri(self, value: str) -> str:
        """A path with query (or any ``name=value`` list, such as a cookie): keys masked,
        and the values of credential parameters masked whatever they hold."""
        if self._param is not None:
            if "%" in value or "+" in value or "\\" in value:
                value = self._mask_pairs(value, _DEPTH)
            elif "=" in value:
                value = self._param.sub(self._mask_param, value)
        return mask_text(value)

    def _mask_pairs(self, value: str, depth: int) -> str:
        """Credential parameters masked with their names and values decoded first, and
        URLs nested in other parameters' values masked in turn."""
        path, mark, query = value.partition("?") if "?" in value else ("", "", value)
        parts = _PAIR_SEPARATORS.split(query)
        for index in range(0, len(parts), 2):
            name, eq, raw = parts[index].partition("=")
            if not eq:
                continue
            if decoded(name, plus=True).strip().lower() in self._params:
                parts[index] = f"{name}={mask(decoded(raw, plus=True))}"
            elif depth > 1 and "=" in (inner := decoded(raw, plus=True)):
                masked = self._mask_pairs(inner, depth - 1)
                if masked != inner:
                    parts[index] = f"{name}={masked}"
        query = "".join(parts)
        return f"{path}{mark}{query}" if mark else query


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter: every line it writes, traceback included, masked."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(self._inner.format(record))


def redact_handlers(*loggers: str) -> None:
    """Every handler of these loggers masks what it writes (idempotent)."""
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, RedactingFormatter):
                handler.setFormatter(RedactingFormatter(handler.formatter))
