"""Optional parts of keyturn and the one line that says how to install a missing one.

The server stack (``keyturn[serve]``) and the PostgreSQL driver (``keyturn[postgres]``) are
extras, so that ``keyturn scan`` in a pre-commit hook and ``keyturn doctor`` do not install
a web server and a database driver. A face that needs one checks for it first.
"""

from __future__ import annotations

import importlib

from keyturn.errors import InvalidValue


def require(extra: str, purpose: str, *modules: str) -> None:
    """``InvalidValue`` naming the ``pip install`` to run, if a module of ``extra`` is missing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise InvalidValue(
                f"{purpose} needs keyturn's {extra!r} extra ({module} is not installed): "
                f"pip install 'keyturn[{extra}]'"
            ) from None
