"""keyturn's optional parts, and the one line that says how to install a missing one.

``pip install keyturn`` is the core: the key format, the verifier, the catalogue, the SQLite
store, the ASGI middleware and the command line's key commands and scanner, on the standard
library, click and a string-search wheel. Everything else is an extra, named here by the
modules it brings (pyproject.toml lists the packages; a test holds the two together). A
module or command that needs an extra checks for it before importing it, so that its
absence is one line naming the extra, never a traceback.
"""

from __future__ import annotations

import importlib.util

from keyturn.errors import InvalidValue

EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("uvicorn", "fastapi", "jinja2", "prometheus_client", "cryptography", "httpx"),
    "postgres": ("psycopg", "psycopg_pool"),
    "redis": ("redis",),
    "doctor": ("httpx", "dotenv", "keyring"),
    "fastapi": ("fastapi",),
    "flask": ("flask",),
    "django": ("django", "rest_framework"),
}


class MissingExtra(InvalidValue, ImportError):
    """An extra is not installed. An ``ImportError`` for ``import keyturn.integrations.flask``
    and the like (code that tries an import keeps working), an ``InvalidValue`` for the
    faces (the CLI's one line and exit 2). ``install`` is the command that adds it."""

    def __init__(self, message: str, install: str) -> None:
        super().__init__(message)
        self.install = install


def missing(extra: str, purpose: str, *modules: str) -> MissingExtra | None:
    """The ``MissingExtra`` naming the ``pip install`` to run if a module of ``extra`` (or
    the ``modules`` of it that ``purpose`` needs) is not installed, else ``None``. Looked
    up, not imported: checking costs no import time, so a command's help can say it."""
    for module in modules or EXTRAS[extra]:
        if importlib.util.find_spec(module) is None:
            install = f"pip install 'keyturn[{extra}]'"
            return MissingExtra(
                f"{purpose} needs keyturn's {extra!r} extra ({module} is not installed): "
                f"{install}",
                install,
            )
    return None


def require(extra: str, purpose: str, *modules: str) -> None:
    """Raise ``missing``'s answer, if there is one."""
    gap = missing(extra, purpose, *modules)
    if gap is not None:
        raise gap
