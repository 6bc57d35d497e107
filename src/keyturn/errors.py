"""One error hierarchy for everything keyturn refuses or cannot do, mapped once per face.

Every error keyturn raises on purpose is a ``KeyturnError``. Its subclass says what kind
of failure it is, and that alone decides how each face reports it:

=================  ==========================================  ======  =========
class              meaning                                     HTTP    CLI exit
=================  ==========================================  ======  =========
``InvalidValue``   a value given is unusable (field, flag,      422     2
                   setting, URL); nothing was changed
``NotFound``       no such key (or other object)               404     2
``NotPermitted``   the acting key may not do this (scopes,     403     1
                   lifetime, allowance)
``Conflict``       the key's state forbids the change          409     1
``Unavailable``    a dependency (database, Redis) does not     503     3
                   answer; retry later
=================  ==========================================  ======  =========

Each class names a catalogue entry (``code``) for its title and explanation, so the admin
API's problem document, the dashboard's error page and the CLI's one line all say the
same. The admin API maps the base class in one exception handler, the dashboard in its one
page gate, the CLI in its one ``main``; a new face does the same, once.

``InvalidValue`` is also a ``ValueError``, so code that validated with ``ValueError``
before keeps working.
"""

from __future__ import annotations

from typing import ClassVar


class KeyturnError(Exception):
    """The base of every error keyturn raises on purpose; ``str()`` is one line that says
    what is wrong and what to do."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(KeyturnError, ValueError):
    """A value given is unusable. ``field`` names it (a request field such as
    ``expires_at``, or a setting), when there is one to name."""

    code = "invalid_request"
    status = 422
    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def at(self, field: str) -> InvalidValue:
        """The same error, naming ``field`` (when it did not name one yet)."""
        if self.field is not None:
            return self
        return type(self)(self.message, field)


class NotFound(KeyturnError, LookupError):
    code = "not_found"
    status = 404
    exit_code = 2


class KeyNotFound(NotFound):
    code = "key_not_found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key with id {key_id!r}; list keys to find its id")
        self.key_id = key_id


class UnknownRole(InvalidValue):
    """A key was given a role that is not defined (``keyturn.roles``)."""

    code = "unknown_role"

    def __init__(self, names: tuple[str, ...]) -> None:
        listed = ", ".join(repr(n) for n in names)
        super().__init__(
            f"no role {listed}: define {'it' if len(names) == 1 else 'them'} first "
            "(PUT /v1/roles/{name}, keyturn roles put) or leave "
            f"{'it' if len(names) == 1 else 'them'} out",
            "roles",
        )
        self.names = names


class InvalidPermissions(InvalidValue):
    """A permission expression (``keyturn.permissions``) that cannot be read."""

    code = "invalid_permissions"

    def __init__(self, message: str) -> None:
        super().__init__(message, "permissions")


class RoleNotFound(NotFound):
    code = "no_such_role"

    def __init__(self, name: str) -> None:
        super().__init__(f"no role {name[:200]!r}; list roles to find its name")
        self.name = name


class NotPermitted(KeyturnError):
    """The acting key may not do this. Nothing was changed."""

    code = "grant_exceeded"
    status = 403
    exit_code = 1


class ScopeNotHeld(NotPermitted):
    """The acting key lacks scopes the operation needs (or would hand out)."""

    code = "insufficient_scope"

    def __init__(self, message: str, missing: tuple[str, ...]) -> None:
        super().__init__(message)
        self.missing = missing


class Conflict(KeyturnError):
    """The key's state forbids the change (enabling a revoked key, rotating twice)."""

    code = "conflict"
    status = 409
    exit_code = 1


class RoleInUse(Conflict):
    """A role that keys still hold cannot be deleted."""

    code = "role_in_use"

    def __init__(self, name: str, holders: int) -> None:
        super().__init__(
            f"role {name!r} is held by {holders} key{'s' if holders != 1 else ''}; take it "
            "off them first (PATCH /v1/keys/{id} with the roles they keep, keyturn keys "
            "update ID --role ...), or revoke them"
        )
        self.name = name
        self.holders = holders


class Unavailable(KeyturnError):
    """A dependency does not answer: the request may succeed if retried after
    ``retry_after`` seconds. Fails closed: nothing is accepted while it lasts."""

    code = "store_unavailable"
    status = 503
    exit_code = 3

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LimiterUnavailable(Unavailable):
    """The rate-limit counter (Redis) does not answer."""

    code = "limiter_unavailable"


__all__ = [
    "Conflict",
    "InvalidPermissions",
    "InvalidValue",
    "KeyNotFound",
    "KeyturnError",
    "LimiterUnavailable",
    "NotFound",
    "NotPermitted",
    "RoleInUse",
    "RoleNotFound",
    "ScopeNotHeld",
    "Unavailable",
    "UnknownRole",
]
