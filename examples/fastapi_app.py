"""keyturn in a FastAPI app: every route needs a key, some need scopes, /docs works.

Run (from the repository root):

    pip install 'keyturn[fastapi]' uvicorn && python examples/fastapi_app.py

It prints a demo key, then serves http://127.0.0.1:8000; open /docs and click Authorize:
either the bearer field or the x-api-key field takes the key.
"""

from typing import Annotated, Any

from demo_key import DATABASE, print_demo_key
from fastapi import FastAPI, Request, Security

from keyturn.integrations import VerifiedKey
from keyturn.integrations.fastapi import KeyturnAuth

app = FastAPI(title="keyturn example")
auth = KeyturnAuth(DATABASE)
auth.protect(app, open_paths=["/health"])  # the three lines: import, KeyturnAuth, protect


@app.get("/items")
async def items(key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])]) -> Any:
    return {"items": ["a", "b"], "caller": key.name}


@app.get("/admin")
async def admin(key: Annotated[VerifiedKey, Security(auth, scopes=["admin"])]) -> Any:
    return {"admin": True, "caller": key.name}


@app.get("/whoami")
async def whoami(request: Request) -> Any:
    """No dependency needed: the middleware put the key on request.state."""
    return request.state.keyturn_key.as_dict()


@app.get("/health")
async def health() -> Any:
    return {"ok": True}


if __name__ == "__main__":
    import uvicorn

    print_demo_key(auth.guard.manager, "http://127.0.0.1:8000")
    uvicorn.run(app, host="127.0.0.1", port=8000)
