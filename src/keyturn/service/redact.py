"""Mask keys in anything the server writes down about a request.

Headers are never logged at all. What is logged (path, query, the original URI a proxy
forwards) can still carry a key — someone pastes one into a URL — so every key-shaped
token and every value of a credential query parameter is masked before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from keyturn.keys import mask

# Any keyturn-shaped key: a prefix, "_", then at least 30 base62 characters. Deliberately
# wider than the configured prefixes, so a key of another deployment is masked too.
_KEY_SHAPED = re.compile(r"[a-z0-9][a-z0-9_]{0,31}_[0-9A-Za-z]{30,}")
_SHORTEST_KEY = 32  # shorter text cannot hold one: skip the regex (most paths are short)


def _mask_match(match: re.Match[str]) -> str:
    return mask(match.group(0))


class Redactor:
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
        """``value`` with every key-shaped token masked."""
        if len(value) < _SHORTEST_KEY:
            return value
        return _KEY_SHAPED.sub(_mask_match, value)

    def uri(self, value: str) -> str:
        """A path with query: key-shaped tokens and credential parameter values masked."""
        if self._param is not None and ("=" in value):
            value = self._param.sub(self._mask_param, value)
        return self.text(value)
