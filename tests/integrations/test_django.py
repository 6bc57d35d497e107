"""Django: the middleware, through Django's test clients (WSGI and ASGI handlers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import AsyncClient, Client
from django.test.utils import override_settings

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

MIDDLEWARE = ["keyturn.integrations.django.KeyturnMiddleware"]


@pytest.fixture(scope="module", autouse=True)
def configured(keys: Keys) -> Iterator[None]:
    keyturn = {
        "KEYS": keys.manager,
        "REALM": REALM,
        "OPEN_PATHS": OPEN_PATHS,
        "SCOPES": PATH_SCOPES,
    }
    with override_settings(ROOT_URLCONF=django_site.plain, MIDDLEWARE=MIDDLEWARE, KEYTURN=keyturn):
        yield


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_django_answers_every_case(case: Case, keys: Keys) -> None:
    r = last(case, lambda: Client().get(keys.url(case), headers=keys.header_dict(case)))
    check(case, observed(r.status_code, r.headers.items(), r.content), keys)


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_django_under_asgi_answers_every_case(case: Case, keys: Keys) -> None:
    async def send() -> object:
        return await AsyncClient().get(keys.url(case), headers=keys.header_dict(case))

    r = last(case, lambda: asyncio.run(send()))
    check(case, observed(r.status_code, r.headers.items(), r.content), keys)  # type: ignore[attr-defined]


MANAGER = None  # set by the test below: what a dotted-path KEYS setting points at


def test_keys_setting_as_a_url_or_a_dotted_path(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid = {"x-api-key": keys.values["valid"]}
    with override_settings(KEYTURN={"KEYS": keys.store_url}):
        assert Client().get("/items", headers=valid).status_code == 200
    monkeypatch.setattr(__import__(__name__, fromlist=["MANAGER"]), "MANAGER", keys.manager)
    with override_settings(KEYTURN={"KEYS": f"{__name__}.MANAGER"}):
        assert Client().get("/items", headers=valid).status_code == 200


def test_without_keys_the_environment_names_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No KEYS: keyturn serve's settings (KEYTURN_DATABASE_URL, default ./keyturn.db), read
    only: a database that is not there is a configuration error naming where it looked."""
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEYTURN_DATABASE_URL", raising=False)
    with (
        override_settings(KEYTURN={}),
        pytest.raises(ImproperlyConfigured, match=str(tmp_path / "keyturn.db")),
    ):
        Client().get("/items")
    assert not (tmp_path / "keyturn.db").exists()
