"""Apps for ``uvicorn tests.integrations.mounted_apps:NAME --root-path /api``, and for Mount.

Every app answers any path with the path it routed on and the caller's key id, behind keyturn
with the same rules: ``/public`` open, ``/admin`` needs ``admin``, ``GET /reports`` needs
``reports``, the rest a key. The store is ``$KEYTURN_TEST_STORE``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from keyturn.integrations.asgi import KeyturnMiddleware
from keyturn.integrations.fastapi import KeyturnAuth

Rules = dict[str, list[str]]
OPEN = ["/public"]
SCOPES: Rules = {"/admin": ["admin"], "GET /reports": ["reports"]}


def _store() -> str:
    return os.environ.get("KEYTURN_TEST_STORE", "sqlite:///keyturn-test.db")


async def _echo(request: StarletteRequest) -> JSONResponse:
    key = getattr(request.state, "keyturn_key", None)
    return JSONResponse({"routed": request.url.path, "key": key.id if key else None})


def starlette_app(keys: Any = None, scopes: Rules = SCOPES) -> Starlette:
    return Starlette(
        routes=[Route("/{path:path}", _echo, methods=["GET", "POST"])],
        middleware=[
            Middleware(KeyturnMiddleware, keys=keys or _store(), open_paths=OPEN, scopes=scopes)
        ],
    )


def mounted_app(keys: Any = None) -> Starlette:
    """The same app, mounted below ``/api`` of another Starlette app."""
    return Starlette(routes=[Mount("/api", app=starlette_app(keys))])


def fastapi_app(keys: Any = None, root_path: str = "", scopes: Rules = SCOPES) -> FastAPI:
    app = FastAPI(root_path=root_path)
    KeyturnAuth(keys or _store()).protect(app, open_paths=OPEN, scopes=scopes)

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST"])
    async def echo(path: str, request: Request) -> dict[str, Any]:
        key = getattr(request.state, "keyturn_key", None)
        return {"routed": "/" + path, "key": key.id if key else None}

    return app


def __getattr__(name: str) -> Any:
    """``starlette``, ``fastapi``: apps built on import by uvicorn, from the environment."""
    builders = {"starlette": starlette_app, "fastapi": fastapi_app}
    if name in builders:
        return builders[name]()
    raise AttributeError(name)
