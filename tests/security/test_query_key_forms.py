"""A key parameter in the query as every upstream reads its name, not only written out.

The reader found a key in the query only when a parameter's name was written literally and
pairs were split at ``&``. Upstreams read more: Django and Rails decode the name
(``access%5Ftoken`` is ``access_token``), Rack 2 and PHP split at ``;`` too, PHP turns
``.``, ``+`` (a space) and an unmatched ``[`` into ``_`` (``api.key`` is ``api_key``) and
ends a name at a NUL, ASP.NET ignores case. So a header key A with ``?access%5Ftoken=B``
was judged as A while the upstream read B, and with ``allow_query`` off such a key was not
refused (it stays in URLs and logs). Now each form is a key parameter: a differing key is
``conflicting_credentials``, and with ``allow_query`` off it is ``credentials_in_query``,
on ``/auth`` (both protocols), through the ASGI middleware and on the verify path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from keyturn import KeyCache, KeyManager
from keyturn.credentials import CredentialReader, Presented, Rejection
from keyturn.verifier import Candidate
from tests.integrations import mounted_apps
from tests.service.conftest import Live, protocol, start_live

__all__ = ["protocol"]  # each of uvicorn's HTTP protocols (h11, httptools) in turn

FORMS = [
    "access%5Ftoken={key}",
    "%61pi_key={key}",
    "x=1;access_token={key}",
    "x=1&amp;api_key={key}",
    "access.token={key}",
    "api.key={key}",
    "api+key={key}",
    "access[token={key}",
    "api_key%00x={key}",
    "API_KEY={key}",
]


@pytest.fixture(scope="module")
def querying(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("on"), http=protocol, allow_query=True)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("off"), http=protocol)


def code(answer: httpx.Response) -> str:
    return str(answer.json()["code"]) if answer.status_code == 400 else str(answer.status_code)


@pytest.mark.parametrize("form", FORMS)
def test_a_differing_key_in_any_form_conflicts(querying: Live, form: str) -> None:
    a, _ = querying.make_key()
    b, _ = querying.make_key()
    query = form.format(key=b)
    bearer = {"authorization": f"Bearer {a}"}
    for _ in range(2):  # the second time the header key is cached: the protocol's fast path
        proxied = {"x-forwarded-uri": f"/o?{query}"}
        for target, extra in ((f"/auth?{query}", {}), ("/auth", proxied)):
            answer = httpx.get(querying.url + target, headers=bearer | extra, timeout=10)
            assert code(answer) == "conflicting_credentials", (form, answer.text)
            assert a not in answer.text and b not in answer.text
    with TestClient(mounted_apps.starlette_app(querying.manager, scopes={})) as client:
        assert client.get(f"/orders?{query}", headers=bearer).json()["code"] == (
            "conflicting_credentials"
        )
    decision = querying.manager.verify(list(bearer.items()), query)
    assert decision.outcome.code == "conflicting_credentials"


@pytest.mark.parametrize("form", FORMS)
def test_a_key_in_any_form_is_refused_without_allow_query(refusing: Live, form: str) -> None:
    a, _ = refusing.make_key()
    query = form.format(key=a)
    bearer = {"authorization": f"Bearer {a}"}
    for _ in range(2):
        answer = httpx.get(f"{refusing.url}/auth?{query}", headers=bearer, timeout=10)
        assert code(answer) == "credentials_in_query", (form, answer.text)
        assert a not in answer.text
    with TestClient(mounted_apps.starlette_app(refusing.manager, scopes={})) as client:
        assert client.get(f"/orders?{query}", headers=bearer).json()["code"] == (
            "credentials_in_query"
        )
    decision = refusing.manager.verify(list(bearer.items()), query)
    assert decision.outcome.code == "credentials_in_query"


def test_other_parameters_still_pass(refusing: Live) -> None:
    a, _ = refusing.make_key()
    bearer = {"authorization": f"Bearer {a}"}
    for query in ("page=2&q=a.b", "q=a%20b;sort=name", "api_keys=3&my.api=1", "token=x"):
        answer = httpx.get(f"{refusing.url}/auth?{query}", headers=bearer, timeout=10)
        assert answer.status_code == 204, (query, answer.text)


def test_the_fast_test_sends_every_form_to_the_reader(tmp_path: Path) -> None:
    """The ASGI fast path (``verify_asgi``'s triage) answers ``None`` ("read fully") for a
    plain key with any form in the query, so none skips the reader, which refuses it."""
    reader = CredentialReader()
    with KeyManager(f"sqlite:///{tmp_path / 'keys.db'}", cache=KeyCache(0)) as manager:
        key = manager.create_key("forms").key
        headers = [(b"authorization", b"Bearer " + key.encode())]
        for form in FORMS:
            query = form.format(key="x").encode()
            assert manager.verify_asgi(headers, query, (), None, None, True) is None, form
            found = reader.read(headers, form.format(key="kt_live_two"))
            assert isinstance(found, Rejection) and found.code == "credentials_in_query", form
        found = manager.verify_asgi(headers, b"page=2&q=a.b", (), None, None, True)
        assert isinstance(found, Candidate) and found.presented == Presented(key, "authorization")
