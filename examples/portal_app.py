"""A host app that lets its own signed-in customers manage their API keys (docs/portal.md).

Run (from the repository root):

    pip install 'keyturn[fastapi]' uvicorn && python examples/portal_app.py

Then, as customer "acme" (the sign-in here is a stand-in for your app's own):

    curl -c jar 'http://127.0.0.1:8000/signin?customer=acme'
    curl -b jar -H 'content-type: application/json' \\
         -d '{"name": "ci", "scopes": ["orders:read"]}' \\
         http://127.0.0.1:8000/account/api-keys/keys          # the new key, shown once
    curl -b jar http://127.0.0.1:8000/account/api-keys/keys   # acme's keys, masked
    curl -H 'Authorization: Bearer <the new key>' http://127.0.0.1:8000/orders

Every key a customer makes carries its owner, holds only the policy's scopes, expires
within 90 days, and a customer holds at most 5; another customer's key ids answer 404.
"""

import secrets
from typing import Annotated, Any

from demo_key import DATABASE
from fastapi import FastAPI, HTTPException, Request, Response, Security

from keyturn.integrations import VerifiedKey
from keyturn.integrations.fastapi import KeyturnAuth, portal_router

app = FastAPI(title="keyturn portal example")
auth = KeyturnAuth(DATABASE)
auth.install(app)
SESSIONS: dict[str, str] = {}  # your app's session store: session id -> customer


def current_customer(request: Request) -> str:
    """Your app's own sign-in decides the owner; keyturn never sees a password."""
    customer = SESSIONS.get(request.cookies.get("session", ""))
    if customer is None:
        raise HTTPException(401, "sign in first")
    return customer


app.include_router(
    portal_router(
        auth,
        owner=current_customer,
        policy={"scopes": ["orders:read", "orders:write"], "max_keys": 5, "max_lifetime": "90d"},
        prefix="/account/api-keys",
    )
)


@app.get("/signin")
async def signin(customer: str, response: Response) -> Any:
    """A stand-in for a real sign-in."""
    session = secrets.token_urlsafe(32)
    SESSIONS[session] = customer
    response.set_cookie("session", session, httponly=True, samesite="strict")
    return {"signed_in": customer}


@app.get("/orders")
async def orders(key: Annotated[VerifiedKey, Security(auth, scopes=["orders:read"])]) -> Any:
    """The API the keys are for: the key's owner is the customer whose orders these are."""
    return {"orders": [], "customer": key.owner}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
