"""``keyturn serve``: the admin API, the verify API and forward-auth, as one ASGI app."""

from __future__ import annotations

from keyturn.service.app import KeyturnService, create_app

__all__ = ["KeyturnService", "create_app"]
