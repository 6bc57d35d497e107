"""Scopes: what a key may do, as RFC 6750 scope tokens, and the one rule for holding them.

A scope is one RFC 6749 §3.3 scope-token: printable ASCII except space, ``"`` and ``\\``,
at most ``MAX_SCOPE_LENGTH`` characters. Scopes travel in ``WWW-Authenticate`` and in the
``X-Keyturn-Scopes`` identity header, so this rule is what keeps those headers well formed;
and since a token holds no space, a space-separated column stores a set of them.
Every face checks scopes with this one rule: the admin API, the dashboard, the CLI, the
settings' path rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from keyturn.errors import InvalidValue
from keyturn.keys import KEY_AS_TEXT, holds_key

MAX_SCOPE_LENGTH = 128
SCOPE_TOKEN = re.compile(rf"[\x21\x23-\x5b\x5d-\x7e]{{1,{MAX_SCOPE_LENGTH}}}")


def validate_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Scopes as scope tokens; ``InvalidValue`` names the first bad one."""
    checked = frozenset(scopes)
    for scope in checked:
        if not isinstance(scope, str) or not SCOPE_TOKEN.fullmatch(scope):
            raise InvalidValue(
                f"invalid scope {str(scope)[:40]!r}: a scope is one word of at most "
                f"{MAX_SCOPE_LENGTH} printable ASCII characters without spaces, quotes or "
                "backslashes, like 'read' or 'billing:write'",
                "scopes",
            )
        if holds_key(scope):
            raise InvalidValue(KEY_AS_TEXT, "scopes")
    return checked


MAX_ROLE_LENGTH = 64
ROLE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_ROLE_LENGTH - 1}}}")


def validate_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Role names (``keyturn.roles``), sorted and without repeats; ``InvalidValue`` names
    the first bad one. A name is one word of letters, digits and ``. _ : -``: it sits in a
    URL path (``/v1/roles/{name}``) and, like a scope, in a space-separated column."""
    if isinstance(roles, str) or not isinstance(roles, Iterable):
        raise InvalidValue("expected a list of role names", "roles")
    given = list(roles)
    for role in given:
        if not isinstance(role, str) or not ROLE_NAME.fullmatch(role):
            raise InvalidValue(
                f"invalid role name {str(role)[:40]!r}: a role name is 1 to "
                f"{MAX_ROLE_LENGTH} letters, digits, dots, underscores, colons or hyphens, "
                "starting with a letter or digit, like 'billing-admin'",
                "roles",
            )
        if holds_key(role):
            raise InvalidValue(KEY_AS_TEXT, "roles")
    return tuple(sorted(set(given)))


def missing_scopes(held: frozenset[str], required: Iterable[str]) -> tuple[str, ...]:
    """The scopes of ``required`` that ``held`` does not grant (empty: all are held).

    ``*`` grants everything; ``keys:*`` grants every ``keys:...`` scope.
    """
    if "*" in held:
        return ()
    return tuple(
        scope
        for scope in required
        if scope not in held and f"{scope.partition(':')[0]}:*" not in held
    )
