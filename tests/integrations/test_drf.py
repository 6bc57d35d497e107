"""Django REST framework: the authentication and permission classes, via Django's client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client
from django.test.utils import override_settings

from keyturn import KeyManager
from keyturn.integrations import Guard, VerifiedKey
from tests.integrations import django_site
from tests.integrations.cases import (
    CASES,
    OPEN_PATHS,
    PATH_SCOPES,
    REALM,
    Case,
    Keys,
    case_ids,
    check,
    last,
    observed,
)
from tests.integrations.servers import wsgi_server

REST = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
EXACT = {**REST, "EXCEPTION_HANDLER": "keyturn.integrations.drf.exception_handler"}


@pytest.fixture(scope="module", autouse=True)
def configured(keys: Keys) -> Iterator[None]:
    keyturn = {"KEYS": keys.manager, "REALM": REALM}
    with override_settings(ROOT_URLCONF=django_site.rest, MIDDLEWARE=[], KEYTURN=keyturn):
        yield


@pytest.mark.parametrize("case", CASES, ids=case_ids())
@pytest.mark.parametrize("handler", ["drf_default", "keyturn"])
def test_drf_answers_every_case(case: Case, handler: str, keys: Keys) -> None:
    exact = handler == "keyturn"
    with override_settings(REST_FRAMEWORK=EXACT if exact else REST):
        r = last(case, lambda: Client().get(keys.url(case), headers=keys.header_dict(case)))
    # DRF's own handler renders the same body through its JSON renderer.
    check(case, observed(r.status_code, r.headers.items(), r.content), keys, problem_json=exact)


def test_drf_isauthenticated_without_a_key_is_401_with_keyturns_challenge() -> None:
    with override_settings(REST_FRAMEWORK=REST):
        r = Client().get("/authenticated")
    assert r.status_code == 401  # DRF would answer 403 if authenticate_header returned None
    assert r.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}"'
    with override_settings(REST_FRAMEWORK=EXACT):
        r = Client().get("/authenticated")
    assert r.status_code == 401
    assert r.json()["code"] == "missing_credentials"
    assert r.headers["Content-Type"] == "application/problem+json"


def test_request_user_is_the_key_unless_mapped(keys: Keys) -> None:
    valid = {"x-api-key": keys.values["valid"]}
    r = Client().get("/authenticated", headers=valid)
    assert r.json() == {"user": f"API key reader ({keys.manager.get(keys.valid_id).masked})"}
    mapped = {"KEYS": keys.manager, "USER": f"{__name__}.owner_of"}
    with override_settings(KEYTURN=mapped):
        assert Client().get("/authenticated", headers=valid).json() == {"user": "alice"}


class _Owner:
    is_authenticated = True

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def owner_of(key: VerifiedKey) -> Any:
    return _Owner(key.owner or "nobody")


def test_scopes_per_method(keys: Keys) -> None:
    r = Client().post("/items", headers={"x-api-key": keys.values["valid"]})
    assert r.status_code == 403
    assert r.json()["code"] == "insufficient_scope"
    assert 'scope="items:write"' in r.headers["WWW-Authenticate"]


def test_keyturn_after_another_authentication_class_keeps_its_401(keys: Keys) -> None:
    from rest_framework.authentication import SessionAuthentication

    from tests.integrations.django_site import Items

    view = Items.as_view(
        authentication_classes=(SessionAuthentication, *Items.authentication_classes)
    )
    from django.test import RequestFactory

    response = view(RequestFactory().get("/items"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f'Bearer realm="{REALM}"'
    response = view(RequestFactory().get("/items", headers={"x-api-key": keys.values["typo"]}))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_with_the_middleware_drf_reuses_its_verification(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    original = Guard.check

    def counting(
        self: Guard, headers: Any, query: Any, scopes: Any, peer: Any = None, seen: Any = None
    ) -> Any:
        calls.append(tuple(scopes))
        return original(self, headers, query, scopes, peer, seen)

    monkeypatch.setattr(Guard, "check", counting)
    keyturn = {
        "KEYS": keys.manager,
        "REALM": REALM,
        "OPEN_PATHS": OPEN_PATHS,
        "SCOPES": PATH_SCOPES,
    }
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]
    with override_settings(MIDDLEWARE=middleware, KEYTURN=keyturn):
        r = Client().get("/items", headers={"x-api-key": keys.values["valid"]})
    assert r.status_code == 200
    assert calls == [("items:read",)]  # the middleware's; DRF's classes read its result


@pytest.fixture
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """django_site.routed on a real WSGI server: a DRF DefaultRouter for /items (guarded
    by the middleware's rule only), and /reports (required_scopes by method)."""
    store = f"sqlite:///{tmp_path_factory.mktemp('routed') / 'keyturn.db'}"
    with KeyManager(store) as manager:
        made = {n: manager.create_key(n, scopes=s).key for n, s in
                (("plain", []), ("items", ["items:read"]), ("reports", ["reports"]))}
    keyturn = {"KEYS": store, "SCOPES": {"/items": ["items:read"]}}
    middleware = ["keyturn.integrations.django.KeyturnMiddleware",
                  "django.middleware.common.CommonMiddleware"]
    settings = override_settings(ROOT_URLCONF=django_site.routed, MIDDLEWARE=middleware,
                                 KEYTURN=keyturn, REST_FRAMEWORK=REST, APPEND_SLASH=True)
    # One statement, entered left to right: the handler loads the overridden MIDDLEWARE.
    with settings, wsgi_server(WSGIHandler()) as url:
        yield url, made


@pytest.mark.parametrize(
    "path", ["/items/", "/items.json", "/items.json/", "/items/7/", "/items/7.json", "/items"]
)
def test_a_router_s_format_suffixes_and_slashes_cannot_get_round_a_rule(
    routed: tuple[str, dict[str, str]], path: str
) -> None:
    url, keys = routed
    refused = httpx.get(url + path, headers={"x-api-key": keys["plain"]})
    assert refused.status_code == 403, refused.text
    assert refused.json()["required_scopes"] == ["items:read"]
    allowed = httpx.get(url + path, headers={"x-api-key": keys["items"]})
    assert allowed.status_code in (200, 301), allowed.text  # 301: APPEND_SLASH to /items/


def test_head_needs_the_scopes_required_for_get(routed: tuple[str, dict[str, str]]) -> None:
    """``required_scopes = {"get": [...]}``: DRF answers HEAD with get(), so HEAD needs them."""
    url, keys = routed
    for method in ("GET", "HEAD"):
        assert httpx.request(method, f"{url}/reports", headers={"x-api-key": keys["plain"]}
                             ).status_code == 403
        assert httpx.request(method, f"{url}/reports", headers={"x-api-key": keys["reports"]}
                             ).status_code == 200
