"""Permission expressions: what a request needs, as scopes joined by ``and``, ``or``, ``not``.

``orders:read and (orders:write or admin)`` holds for a key whose effective scopes
(``KeyRecord.granted``: its own and its roles') include ``orders:read`` and either of the
other two; scopes match as everywhere else (``*`` and ``prefix:*`` grant, see
``keyturn.scopes.missing_scopes``). ``not`` binds tightest, then ``and``, then ``or``, as in
Python; keywords are case-insensitive, so no scope named ``and``, ``or`` or ``not`` can be
written, nor one holding a parenthesis (a scope token may, RFC 6749 §3.3).

When an expression does not hold, ``unmet`` says which part failed, simplified: the parts
that held are dropped, so for a key holding only ``orders:read`` the answer is
``orders:write or admin``, what is missing, not the whole expression again.

A hand-written recursive-descent parser of some sixty lines rather than a parsing library:
the grammar is four rules, and the core package stays free of dependencies it would add.
Input is bounded (``MAX_LENGTH`` characters, ``MAX_DEPTH`` levels of nesting), so no
expression can exhaust the stack; every malformed one is ``InvalidPermissions`` (422) saying
where it stops making sense.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from keyturn.errors import InvalidPermissions
from keyturn.scopes import SCOPE_TOKEN, missing_scopes

MAX_LENGTH: Final = 2048
MAX_DEPTH: Final = 32
KEYWORDS: Final = frozenset({"and", "or", "not"})
_TOKEN = re.compile(r"\s*(?:([()])|([^\s()]+))")


class Node:
    """A parsed expression (``Scope``, ``Not``, ``All``, ``AnyOf``); immutable."""

    __slots__ = ()

    def holds(self, granted: frozenset[str]) -> bool:
        raise NotImplementedError

    def unmet(self, granted: frozenset[str]) -> Node | None:
        """The part of the expression that ``granted`` fails, simplified (``None``: it
        holds)."""
        raise NotImplementedError

    def scopes(self) -> tuple[str, ...]:
        """Every scope the expression names, in order of appearance, once each."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Scope(Node):
    name: str

    def holds(self, granted: frozenset[str]) -> bool:
        return not missing_scopes(granted, (self.name,))

    def unmet(self, granted: frozenset[str]) -> Node | None:
        return None if self.holds(granted) else self

    def scopes(self) -> tuple[str, ...]:
        return (self.name,)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Not(Node):
    part: Node

    def holds(self, granted: frozenset[str]) -> bool:
        return not self.part.holds(granted)

    def unmet(self, granted: frozenset[str]) -> Node | None:
        return self if self.part.holds(granted) else None

    def scopes(self) -> tuple[str, ...]:
        return self.part.scopes()

    def __str__(self) -> str:
        return f"not {_grouped(self.part, Scope, Not)}"


@dataclass(frozen=True, slots=True)
class All(Node):
    parts: tuple[Node, ...]

    def holds(self, granted: frozenset[str]) -> bool:
        return all(part.holds(granted) for part in self.parts)

    def unmet(self, granted: frozenset[str]) -> Node | None:
        failed = [r for r in (part.unmet(granted) for part in self.parts) if r is not None]
        if not failed:
            return None
        return failed[0] if len(failed) == 1 else All(tuple(failed))

    def scopes(self) -> tuple[str, ...]:
        return _union(self.parts)

    def __str__(self) -> str:
        return " and ".join(_grouped(part, Scope, Not, All) for part in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf(Node):
    parts: tuple[Node, ...]

    def holds(self, granted: frozenset[str]) -> bool:
        return any(part.holds(granted) for part in self.parts)

    def unmet(self, granted: frozenset[str]) -> Node | None:
        failed = [part.unmet(granted) for part in self.parts]
        if any(r is None for r in failed):
            return None
        return AnyOf(tuple(r for r in failed if r is not None))

    def scopes(self) -> tuple[str, ...]:
        return _union(self.parts)

    def __str__(self) -> str:
        return " or ".join(str(part) for part in self.parts)


def _grouped(part: Node, *bare: type[Node]) -> str:
    return str(part) if isinstance(part, bare) else f"({part})"


def _union(parts: tuple[Node, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for part in parts for name in part.scopes()))


def parse(text: object) -> Node:
    """The expression ``text`` spells; ``InvalidPermissions`` says what is wrong with it."""
    if not isinstance(text, str):
        raise InvalidPermissions("expected the expression as text")
    if len(text) > MAX_LENGTH:
        raise InvalidPermissions(f"the expression is longer than {MAX_LENGTH} characters")
    return _Parser(text).expression()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[int, str, bool]] = []  # (offset, text, is a parenthesis)
        for found in _TOKEN.finditer(text):
            paren, word = found.group(1), found.group(2)
            self.tokens.append((found.start(1 if paren else 2), paren or word, bool(paren)))
        self.at = 0
        self.depth = 0

    def expression(self) -> Node:
        if not self.tokens:
            raise InvalidPermissions(
                "the expression is empty: name a scope, like 'orders:read'"
            )
        node = self._any()
        if self.at < len(self.tokens):
            offset, word, _ = self.tokens[self.at]
            what = "a ')' without its '('" if word == ")" else f"{word[:40]!r}"
            raise InvalidPermissions(
                f"unexpected {what} at character {offset + 1}: join parts with 'and' or 'or'"
            )
        return node

    def _any(self) -> Node:
        parts = [self._all()]
        while self._keyword("or"):
            parts.append(self._all())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def _all(self) -> Node:
        parts = [self._not()]
        while self._keyword("and"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def _not(self) -> Node:
        if self._keyword("not"):
            self._deeper()
            node = Not(self._not())
            self.depth -= 1
            return node
        return self._primary()

    def _primary(self) -> Node:
        if self.at >= len(self.tokens):
            after = self.tokens[-1][1] if self.tokens else ""
            raise InvalidPermissions(
                f"the expression ends after {after[:40]!r}: a scope or '(' must follow"
            )
        offset, word, paren = self.tokens[self.at]
        self.at += 1
        if paren and word == "(":
            self._deeper()
            node = self._any()
            self.depth -= 1
            if self.at >= len(self.tokens) or self.tokens[self.at][1] != ")":
                raise InvalidPermissions(
                    f"the '(' at character {offset + 1} is never closed: add a ')'"
                )
            self.at += 1
            return node
        if paren:
            raise InvalidPermissions(
                f"a ')' at character {offset + 1} where a scope or '(' must be"
            )
        if word.lower() in KEYWORDS:
            raise InvalidPermissions(
                f"'{word}' at character {offset + 1} where a scope or '(' must be"
            )
        if not SCOPE_TOKEN.fullmatch(word):
            raise InvalidPermissions(
                f"{word[:40]!r} at character {offset + 1} is not a scope: a scope is one "
                "word of printable ASCII without quotes or backslashes, like 'orders:read'"
            )
        return Scope(word)

    def _keyword(self, keyword: str) -> bool:
        if self.at < len(self.tokens):
            _, word, paren = self.tokens[self.at]
            if not paren and word.lower() == keyword:
                self.at += 1
                return True
        return False

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidPermissions(f"the expression nests deeper than {MAX_DEPTH} levels")


def permissions_of(value: str | Node | None) -> Node | None:
    """An expression as callers give it: text (parsed), parsed already, or none."""
    return value if value is None or isinstance(value, Node) else parse(value)
