"""``keyturn serve``: the admin API, the verify API and forward-auth, as one ASGI app.

``create_app`` is imported on first use, so that ``keyturn init`` and other users of the
lighter modules here (settings, bootstrap) do not pay for importing FastAPI and uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyturn.service.app import KeyturnService, create_app

__all__ = ["KeyturnService", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from keyturn.service import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
