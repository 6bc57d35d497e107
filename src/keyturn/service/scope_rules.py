"""Which scopes a proxied request needs, from its method and path.

Paths are matched after normalisation (percent-decoding, ``.``/``..`` segments and repeated
slashes resolved), because the upstream behind the proxy resolves them too: matched raw,
``/public/../admin/users`` would pass the ``/public`` rule and be served as ``/admin/users``.
The longest matching prefix wins; at equal length a rule naming the method beats one that
does not. Prefixes match as plain strings, as nginx ``location`` prefixes do: ``/admin``
covers ``/administrators`` too, so write ``/admin/`` to mean the folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from keyturn.config import ScopeRule

_CACHE_LIMIT = 4096


def normalize_path(path: str) -> str:
    """RFC 3986 dot-segment removal over the percent-decoded path; keeps a trailing slash."""
    decoded = unquote(path)
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normal = "/" + "/".join(segments)
    if segments and (decoded.endswith("/") or decoded.endswith("/.") or decoded.endswith("/..")):
        normal += "/"
    return normal


class ScopeRules:
    """An ordered rule list with a small memo, since proxies send the same paths over and over."""

    __slots__ = ("_memo", "_rules")

    def __init__(self, rules: Iterable[ScopeRule]) -> None:
        # Most specific first: longer prefix, then method-bound before method-free.
        self._rules = sorted(
            rules, key=lambda r: (len(r.prefix), r.method is not None), reverse=True
        )
        self._memo: dict[tuple[str, str], tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def required(self, method: str, path: str) -> tuple[str, ...]:
        """The scopes of the most specific rule for this request, or ``()`` if none matches."""
        memo_key = (method, path)
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        normal = normalize_path(path)
        upper = method.upper()
        found = next(
            (
                rule.scopes
                for rule in self._rules
                if normal.startswith(rule.prefix) and rule.method in (None, upper)
            ),
            (),
        )
        if len(self._memo) >= _CACHE_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = found
        return found
