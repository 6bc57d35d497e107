"""The embedded customer portal in Django: ``portal_urls`` behind Django's CSRF middleware.

The same operations, isolation and policy as FastAPI's ``portal_router``
(``test_portal_router.py``); here also: Django's CSRF check stays in force, so a post needs
the app's CSRF token as well as a JSON body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.http import HttpRequest
from django.test import Client
from django.test.utils import override_settings
from django.urls import include, path

from keyturn import KeyManager
from keyturn.integrations.django import portal_urls

SESSIONS = {"s-acme": "acme", "s-globex": "globex"}
POLICY = {"scopes": ["orders:read", "orders:write"], "max_keys": 2, "max_lifetime": "30d"}
CSRF = "c" * 32


def current_customer(request: HttpRequest) -> str | None:
    return SESSIONS.get(request.COOKIES.get("session", ""))


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyManager]:
    with KeyManager(f"sqlite:///{tmp_path / 'keys.db'}") as manager:
        yield manager


@pytest.fixture
def site(keys: KeyManager) -> Iterator[None]:
    class urls:  # a URLconf
        urlpatterns: ClassVar = [
            path(
                "account/api-keys/",
                include(portal_urls(owner=current_customer, policy=POLICY, keys=keys)),
            )
        ]

    middleware = ["django.middleware.csrf.CsrfViewMiddleware"]
    with override_settings(ROOT_URLCONF=urls, MIDDLEWARE=middleware, KEYTURN={"KEYS": keys}):
        yield


def customer(session: str) -> Client:
    client = Client(enforce_csrf_checks=True, HTTP_X_CSRFTOKEN=CSRF)
    client.cookies["session"] = session
    client.cookies["csrftoken"] = CSRF
    return client


def post(client: Client, url: str, body: Any = None) -> Any:
    # Django's test client drops the type of an empty body: an empty object stands for none.
    data = "{}" if body is None else json.dumps(body)
    return client.post(url, data, content_type="application/json")


BASE = "/account/api-keys/keys"


def test_an_owner_manages_its_keys(site: None, keys: KeyManager) -> None:
    acme = customer("s-acme")
    made = post(acme, BASE, {"name": "worker", "scopes": ["orders:read"]})
    assert made.status_code == 201, made.content
    key = made.json()["key"]
    assert keys.verify_key(key).ok and made.json()["owner"] == "acme"
    assert acme.get(BASE).json()["working"] == 1
    key_id = made.json()["id"]
    assert acme.get(f"{BASE}/{key_id}").json()["usage"]["by_outcome"] == {}
    rotated = post(acme, f"{BASE}/{key_id}/rotate", {"grace_seconds": 0})
    assert rotated.status_code == 201
    revoked = post(acme, f"{BASE}/{rotated.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert {e.actor for e in keys.audit(key_id=key_id)} == {"owner:acme"}


def test_another_owners_keys_are_404(site: None, keys: KeyManager) -> None:
    theirs = keys.create_key("globex", scopes=["orders:read"], owner="globex").record.id
    acme = customer("s-acme")
    assert acme.get(f"{BASE}/{theirs}").status_code == 404
    assert post(acme, f"{BASE}/{theirs}/rotate", {"grace_seconds": 0}).status_code == 404
    assert post(acme, f"{BASE}/{theirs}/revoke").status_code == 404
    assert acme.get(BASE).json()["keys"] == []
    assert keys.get(theirs).usable()


def test_the_policy_csrf_and_json_hold(site: None, keys: KeyManager) -> None:
    acme = customer("s-acme")
    assert post(acme, BASE, {"name": "x", "scopes": ["admin"]}).status_code == 403
    assert post(acme, BASE, {"name": "x", "expires_in": None}).status_code == 403
    assert post(acme, BASE, {"name": "x", "expires_in": "soon"}).status_code == 422
    form = acme.post(BASE, {"name": "x"})  # a form post, as a cross-site form sends
    assert form.status_code == 422
    no_token = Client(enforce_csrf_checks=True)
    no_token.cookies["session"] = "s-acme"
    assert post(no_token, BASE, {"name": "x"}).status_code == 403
    anonymous = customer("nobody")
    assert anonymous.get(BASE).status_code == 403
    assert acme.put(BASE).status_code == 405
    assert post(acme, BASE, {"name": "a"}).status_code == 201
    assert post(acme, BASE, {"name": "b"}).status_code == 201
    assert post(acme, BASE, {"name": "c"}).status_code == 403
    assert len(keys.list_keys()) == 2
    # A bodiless post with no type, as another site can send one: refused, the key kept.
    kept = keys.list_keys()[0].id
    for verb in ("revoke", "rotate"):
        assert acme.post(f"{BASE}/{kept}/{verb}").status_code == 422, verb
    assert keys.get(kept).usable()


def test_the_portal_pages_for_the_signed_in_owner(tmp_path: Path) -> None:
    import httpx

    from tests.service.conftest import start_live

    for server in start_live(tmp_path):

        class urls:
            urlpatterns: ClassVar = [
                path(
                    "account/api-keys/",
                    include(
                        portal_urls(
                            owner=current_customer,
                            policy=POLICY,
                            keys=server.manager,
                            pages_url=server.url,
                        )
                    ),
                )
            ]

        with override_settings(ROOT_URLCONF=urls, MIDDLEWARE=[]):
            assert customer("nobody").get("/account/api-keys/pages").status_code == 403
            moved = customer("s-acme").get("/account/api-keys/pages")
        assert moved.status_code == 303
        link = moved.headers["location"]
        browser = httpx.Client(timeout=10)
        assert browser.get(link).status_code == 200
        assert "Keys of <strong>acme</strong>" in browser.get(f"{server.url}/portal/").text
