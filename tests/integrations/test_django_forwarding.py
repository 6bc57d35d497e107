"""Django behind a trusted proxy: the middleware and DRF judge a key restricted by address
on the client the proxy names (``X-Forwarded-For``), as every other face does, and the
verification log records that client and the request's user agent. They read only the
``request.META`` entries keyturn needs, and those must include the forwarding headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client as DjangoClient
from django.test.utils import override_settings

from keyturn import KeyManager
from keyturn._verifications import VerificationFilter
from keyturn.verifier import Verifier
from tests.integrations import django_site

CLIENT = "203.0.113.9"
ELSEWHERE = "198.51.100.7"
AGENT = "orders-sync/2.1"


@pytest.fixture
def trusting(tmp_path: Path) -> Iterator[tuple[KeyManager, str]]:
    """A manager trusting the test client's peer (127.0.0.1) as a proxy, and a key that
    works only from ``CLIENT``."""
    url = f"sqlite:///{tmp_path / 'fwd.db'}"
    with KeyManager(url) as maker:
        key = maker.create_key("fenced", scopes=["items:read"], allowed_ips=[CLIENT]).key
    manager = KeyManager(url, verifier=Verifier(trusted_proxies=["127.0.0.1"]))
    yield manager, key
    manager.close()


SITES = {
    "django": (django_site.plain, ["keyturn.integrations.django.KeyturnMiddleware"]),
    "drf": (django_site.rest, []),
}


@contextmanager
def _site(manager: KeyManager, site: str) -> Iterator[DjangoClient]:
    """A test client for one Django face, configured with ``manager``."""
    urls, middleware = SITES[site]
    with override_settings(ROOT_URLCONF=urls, MIDDLEWARE=middleware,
                           KEYTURN={"KEYS": manager}):  # fmt: skip
        yield DjangoClient()


@pytest.mark.parametrize("site", SITES)
def test_the_client_a_trusted_proxy_names_is_judged_and_logged(
    trusting: tuple[KeyManager, str], site: str
) -> None:
    manager, key = trusting
    with _site(manager, site) as client:
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_USER_AGENT": AGENT}
        assert client.get("/items", HTTP_X_FORWARDED_FOR=CLIENT, **auth).status_code == 200
        refused = client.get("/items", HTTP_X_FORWARDED_FOR=ELSEWHERE, **auth)
        assert refused.status_code == 403
        assert refused.json()["code"] == "ip_not_allowed"
    manager.verifications.flush()
    logged = manager.store.verifications(VerificationFilter())
    assert sorted((v.outcome, v.client, v.user_agent) for v in logged) == [
        ("ip_not_allowed", ELSEWHERE, AGENT),
        ("valid", CLIENT, AGENT),
    ]


@pytest.mark.parametrize("site", SITES)
def test_a_proxys_forwarded_header_that_disagrees_is_read(
    trusting: tuple[KeyManager, str], site: str
) -> None:
    """A proxy that sets only ``Forwarded`` passes the client's own X-Forwarded-For on:
    the Django faces read ``Forwarded`` too, so the client cannot name itself."""
    manager, key = trusting
    with _site(manager, site) as client:
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_FORWARDED_FOR": CLIENT}
        refused = client.get("/items", HTTP_FORWARDED=f"for={ELSEWHERE}", **auth)
        assert refused.status_code == 403
        assert refused.json()["code"] == "ip_not_allowed"
        agreed = client.get("/items", HTTP_FORWARDED=f'for="{CLIENT}:4711"', **auth)
        assert agreed.status_code == 200
