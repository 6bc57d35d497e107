"""keyturn as pure ASGI middleware in a Starlette app, with per-path scopes.

Run (from the repository root):

    pip install keyturn starlette uvicorn && python examples/starlette_app.py

It prints a demo key, then serves http://127.0.0.1:8000.
"""

from demo_key import DATABASE, print_demo_key
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keyturn import KeyManager
from keyturn.integrations.asgi import KeyturnMiddleware

keys = KeyManager(DATABASE)


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"items": ["a", "b"], "caller": request.state.keyturn_key.name})


async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": True, "caller": request.state.keyturn_key.name})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[Route("/items", items), Route("/admin", admin), Route("/health", health)],
    middleware=[
        Middleware(
            KeyturnMiddleware,
            keys=keys,
            open_paths=["/health"],
            scopes={"/items": ["items:read"], "/admin": ["admin"]},
        )
    ],
)

if __name__ == "__main__":
    import uvicorn

    print_demo_key(keys, "http://127.0.0.1:8000")
    uvicorn.run(app, host="127.0.0.1", port=8000)
