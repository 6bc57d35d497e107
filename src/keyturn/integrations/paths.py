"""Which requests need a key, and which scopes: one rule table for every framework.

A rule names a path prefix, optionally after a method (``"POST /items"``). A prefix covers
itself and everything below it (``/health`` covers ``/health`` and ``/health/db``, not
``/healthz``); the longest matching prefix wins, and a rule with a method beats one without
at the same length. A path that no rule covers needs a key and no particular scope.

Open paths (health checks, API docs) need no key at all. A path with ``.`` or ``..``
segments is matched both as sent and as normalised, and gets the stricter of the two
answers, so ``/health/../admin`` cannot borrow the openness of ``/health`` in an app whose
router resolves dot segments.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence

Requirement = tuple[str, ...] | None
"""The scopes a request needs (``()``: a key, any scopes), or ``None``: no key needed."""

_MEMO_LIMIT = 4096  # distinct (method, path) answers remembered; a path flood only resets it


class PathRules:
    __slots__ = ("_memo", "_rules")

    def __init__(
        self,
        open_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        rules: dict[tuple[str | None, str], Requirement] = {}
        for spec in open_paths:
            rules[_parse(spec)] = None
        for spec, required in (scopes or {}).items():
            if isinstance(required, str):
                raise TypeError(f"scopes for {spec!r} must be a list of scopes, not a string")
            where = _parse(spec)
            if where in rules:
                raise ValueError(f"{spec!r} is listed both as an open path and with scopes")
            rules[where] = tuple(required)
        # Longest prefix first; at equal length the rule naming a method first.
        ordered = sorted(rules.items(), key=lambda r: (len(r[0][1]), r[0][0] is not None))
        self._rules = tuple((method, prefix, req) for (method, prefix), req in reversed(ordered))
        self._memo: dict[str, Requirement] = {}

    def requirement(self, method: str, path: str) -> Requirement:
        """What a ``method`` request to ``path`` needs."""
        if not self._rules:
            return ()
        memo_key = f"{method} {path}"
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        found = self._match(method, path)
        if "/." in path:
            found = _stricter(found, self._match(method, _normalise(path)))
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = found
        return found

    def _match(self, method: str, path: str) -> Requirement:
        for rule_method, prefix, required in self._rules:
            if rule_method is not None and rule_method != method:
                continue
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return required
        return ()


def _parse(spec: str) -> tuple[str | None, str]:
    method, _, path = spec.strip().rpartition(" ")
    if not path.startswith("/"):
        raise ValueError(f"path rule {spec!r} must start with '/' (optionally after a method)")
    path = path.rstrip("/") or "/"
    return (method.strip().upper() or None), path


def _normalise(path: str) -> str:
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")  # normpath keeps a leading '//'; a path never needs it


def _stricter(a: Requirement, b: Requirement) -> Requirement:
    if a is None:
        return b
    if b is None:
        return a
    return a + tuple(s for s in b if s not in a)
