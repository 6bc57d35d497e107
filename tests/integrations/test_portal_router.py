"""The embedded customer portal: ``portal_router`` in a FastAPI app on a real server.

The host app signs its users in itself (here: a cookie naming a session in a dict, as any
app's session store would); its dependency returns the owner, and the router serves the
portal's operations as that owner through the admin layer. The same isolation and policy
hold as in ``keyturn serve``'s portal: another owner's key is a 404 for every operation,
the policy's bounds are a 403, bodies must be JSON, every change is audited as the owner.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the dependency's signature.

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request

from keyturn import KeyManager
from keyturn.integrations.fastapi import KeyturnAuth, portal_router
from tests.integrations.servers import asgi_server

SESSIONS = {"s-acme": "acme", "s-globex": "globex"}
POLICY = {"scopes": ["orders:read", "orders:write"], "max_keys": 2, "max_lifetime": "30d"}


def current_customer(request: Request) -> str:
    """The host app's own sign-in: a session cookie (401 without one)."""
    owner = SESSIONS.get(request.cookies.get("session", ""))
    if owner is None:
        raise HTTPException(401, "sign in first")
    return owner


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyManager]:
    with KeyManager(f"sqlite:///{tmp_path / 'keys.db'}") as manager:
        yield manager


@pytest.fixture
def host(keys: KeyManager) -> Iterator[str]:
    auth = KeyturnAuth(keys)
    app = FastAPI()
    auth.install(app)
    app.include_router(portal_router(auth, owner=current_customer, policy=POLICY))

    @app.get("/orders")
    async def orders(request: Request) -> dict[str, Any]:  # the API the keys are for
        return {"ok": True}

    with asgi_server(app) as url:
        yield url


JSON = {"content-type": "application/json"}


def customer(url: str, session: str) -> httpx.Client:
    return httpx.Client(base_url=url, cookies={"session": session}, timeout=10)


def test_an_owner_manages_its_keys_as_json(host: str, keys: KeyManager) -> None:
    acme = customer(host, "s-acme")
    made = acme.post("/portal/keys", json={"name": "worker", "scopes": ["orders:read"]})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert made.json()["owner"] == "acme"
    assert keys.verify_key(key).ok
    listed = acme.get("/portal/keys").json()
    assert [k["name"] for k in listed["keys"]] == ["worker"]
    assert listed["working"] == 1 and listed["policy"]["max_keys"] == 2
    assert key not in str(listed)
    one = acme.get(f"/portal/keys/{made.json()['id']}").json()
    assert one["usage"]["by_outcome"] == {} and one["key"] != key  # masked from now on
    rotated = acme.post(f"/portal/keys/{made.json()['id']}/rotate", json={"grace_seconds": 60})
    assert rotated.status_code == 201 and rotated.json()["key"] != key
    # The usage-aware grace, as on the served portal's rotate form.
    until_quiet = {"grace_until_quiet_seconds": 900, "grace_max_seconds": 86400}
    quiet = acme.post(f"/portal/keys/{rotated.json()['id']}/rotate", json=until_quiet)
    assert quiet.status_code == 201, quiet.text
    old = keys.get(rotated.json()["id"])
    assert old.grace_quiet_seconds == 900 and old.grace_max is not None
    both = acme.post(f"/portal/keys/{quiet.json()['id']}/rotate",
                     json={"grace_seconds": 60, "grace_until_quiet_seconds": 900})  # fmt: skip
    assert both.status_code == 422
    revoked = acme.post(f"/portal/keys/{quiet.json()['id']}/revoke", headers=JSON)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    actors = {e.actor for e in keys.audit(key_id=made.json()["id"])}
    assert actors == {"owner:acme"}


def test_another_owners_keys_are_404_for_every_operation(host: str, keys: KeyManager) -> None:
    theirs = keys.create_key("globex key", scopes=["orders:read"], owner="globex")
    acme = customer(host, "s-acme")
    key_id = theirs.record.id
    for method, path, body in (
        ("GET", f"/portal/keys/{key_id}", None),
        ("POST", f"/portal/keys/{key_id}/rotate", {"grace_seconds": 0}),
        ("POST", f"/portal/keys/{key_id}/revoke", None),
    ):
        answer = acme.request(method, path, json=body, headers=JSON if method == "POST" else {})
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
    assert keys.get(key_id).usable()
    assert customer(host, "s-globex").get("/portal/keys").json()["keys"][0]["id"] == key_id
    assert acme.get("/portal/keys").json()["keys"] == []


def test_the_policy_holds(host: str) -> None:
    acme = customer(host, "s-acme")
    for body, status in (
        ({"name": "x", "scopes": ["admin"]}, 403),
        ({"name": "x", "scopes": ["keys:write"]}, 403),
        ({"name": "x", "expires_in": None}, 403),
        ({"name": "x", "expires_in": 31 * 86400}, 403),
        ({"name": ""}, 422),
        ({"name": "x", "expires_in": "soon"}, 422),
        ({"name": "x", "colour": "red"}, 422),
        (["not", "an", "object"], 422),
    ):
        answer = acme.post("/portal/keys", json=body)
        assert answer.status_code == status, (body, answer.text)
    longest = {"name": "a", "expires_in": 30 * 86400}
    assert acme.post("/portal/keys", json=longest).status_code == 201
    assert acme.post("/portal/keys", json={"name": "b"}).status_code == 201
    beyond = acme.post("/portal/keys", json={"name": "c"})
    assert beyond.status_code == 403 and "most allowed is 2" in beyond.json()["detail"]


def test_only_signed_in_json_posts_reach_it(host: str) -> None:
    anonymous = httpx.Client(base_url=host, timeout=10)
    assert anonymous.get("/portal/keys").status_code == 401
    assert anonymous.post("/portal/keys", json={"name": "x"}).status_code == 401
    acme = customer(host, "s-acme")
    # What a cross-site form could send: not JSON, refused before it is read.
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        answer = acme.post(
            "/portal/keys", content=b'{"name": "x"}', headers={"content-type": content_type}
        )
        assert answer.status_code == 422, content_type
    assert acme.post(
        "/portal/keys", content=b"{not json", headers={"content-type": "application/json"}
    ).status_code == 422
    big = acme.post("/portal/keys", json={"name": "x" * 20_000})
    assert big.status_code == 422
    assert acme.get("/portal/keys").json()["keys"] == []
    # A bodiless post with no type at all (fetch in no-cors mode, sendBeacon) is one another
    # site can send with the user's cookies: revoking and rotating need the JSON type too.
    made = acme.post("/portal/keys", json={"name": "kept"}).json()["id"]
    for verb in ("revoke", "rotate"):
        for headers in ({}, {"content-type": "text/plain"}):
            refused = acme.post(f"/portal/keys/{made}/{verb}", headers=headers)
            assert refused.status_code == 422, (verb, headers, refused.text)
    assert acme.get(f"/portal/keys/{made}").json()["status"] == "active"
    assert acme.post(f"/portal/keys/{made}/revoke", headers=JSON).status_code == 200


def test_a_policy_per_owner(keys: KeyManager) -> None:
    from keyturn.portal import OwnerPolicy

    auth = KeyturnAuth(keys)
    app = FastAPI()
    plans = {"acme": OwnerPolicy.of({"scopes": ["orders:read"], "max_keys": 1})}
    app.include_router(
        portal_router(
            auth,
            owner=current_customer,
            policy=lambda owner: plans.get(owner, OwnerPolicy.of({"max_keys": 0})),
            prefix="/account/api-keys",
        )
    )
    with asgi_server(app) as url:
        acme, globex = customer(url, "s-acme"), customer(url, "s-globex")
        assert acme.post("/account/api-keys/keys", json={"name": "a"}).status_code == 201
        assert acme.post("/account/api-keys/keys", json={"name": "b"}).status_code == 403
        assert globex.post("/account/api-keys/keys", json={"name": "a"}).status_code == 403


def test_the_portal_pages_for_the_signed_in_owner(tmp_path: Path) -> None:
    """``pages_url``: the host app sends its signed-in user to keyturn serve's portal pages
    with a single-use link for that owner, under the router's policy."""
    from tests.service.conftest import start_live

    for server in start_live(tmp_path):
        auth = KeyturnAuth(server.manager)
        app = FastAPI()
        app.include_router(
            portal_router(
                auth,
                owner=current_customer,
                policy=POLICY,
                pages_url=server.url,
                return_url="https://app.example/account",
            )
        )
        with asgi_server(app) as url:
            assert httpx.get(f"{url}/portal/pages").status_code == 401
            moved = customer(url, "s-acme").get("/portal/pages")
        assert moved.status_code == 303
        link = moved.headers["location"]
        assert link.startswith(f"{server.url}/portal/enter?token=ktp_")
        browser = httpx.Client(timeout=10)
        assert browser.get(link).status_code == 200
        page = browser.get(f"{server.url}/portal/")
        assert page.status_code == 200
        assert "Keys of <strong>acme</strong>" in page.text
        assert 'href="https://app.example/account"' in page.text
        assert "You hold 0 working keys of at most 2" in page.text
        assert httpx.get(link, timeout=10).status_code == 410  # used
