"""A key header spelled with '_' for '-' (``X_Api_Key``) is refused, not passed over.

A CGI-style server (PHP behind FastCGI, Rack, uWSGI) files every header under
``HTTP_`` + its name upper-cased with '-' as '_', so ``X_Api_Key`` and ``X-Api-Key`` are
one header there, while keyturn, like any HTTP parser, read ``X_Api_Key`` as some other
header and ignored it. Caddy, Traefik and Envoy pass such names on. So
``Authorization: Bearer A`` with ``X_Api_Key: B`` was judged as A while such an upstream
read B (the query-parameter twin of this, ``?access%5Ftoken=B``, was refused already), and
the shipped proxy configurations strip ``X-Api-Key`` but not ``X_Api_Key``: the key went
on to the application. Now any respelling of a key header is ``malformed_credentials``,
on ``/auth`` (both protocols, the cached key's fast path too), through the ASGI middleware
and on the verify path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from keyturn import KeyCache, KeyManager
from keyturn.credentials import CredentialReader, Presented, Rejection
from keyturn.verifier import Candidate, Verifier
from tests.integrations import mounted_apps
from tests.service.conftest import Live, protocol, start_live

__all__ = ["protocol"]  # each of uvicorn's HTTP protocols (h11, httptools) in turn

SPELLINGS = ["x_api_key", "X_Api_Key", "x-api_key", "x_api-key"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("spellings"), http=protocol)


@pytest.mark.parametrize("name", SPELLINGS)
@pytest.mark.parametrize("beside", ["bearer", "alone"])
def test_a_respelled_key_header_is_refused(live: Live, name: str, beside: str) -> None:
    a, _ = live.make_key()
    b, _ = live.make_key()
    headers = {name: b} | ({"authorization": f"Bearer {a}"} if beside == "bearer" else {})
    for _ in range(2):  # the second time the header key is cached: the protocol's fast path
        answer = httpx.get(f"{live.url}/auth", headers=headers, timeout=10)
        assert answer.status_code == 400, answer.text
        problem = answer.json()
        assert problem["code"] == "malformed_credentials"
        assert name.lower() in problem["detail"] and "x-api-key" in problem["hint"]
        assert a not in answer.text and b not in answer.text
    with TestClient(mounted_apps.starlette_app(live.manager, scopes={})) as client:
        assert client.get("/orders", headers=headers).json()["code"] == "malformed_credentials"
    decision = live.manager.verify(list(headers.items()))
    assert decision.outcome.code == "malformed_credentials"


def test_other_underscored_headers_still_pass(live: Live) -> None:
    a, _ = live.make_key()
    headers = {"authorization": f"Bearer {a}", "x_request_tag": "7", "x_api": "1"}
    for _ in range(2):
        assert httpx.get(f"{live.url}/auth", headers=headers, timeout=10).status_code == 204


def test_every_spelling_of_a_configured_header(tmp_path: Path) -> None:
    """A header configured with '_' has its '-' spellings refused the same way; the ASGI
    fast path leaves them to the full reader (``None``), and reads the configured one."""
    reader = CredentialReader(["partner_key"])
    found = reader.read([("Partner-Key", "kt_live_x")])
    assert isinstance(found, Rejection) and found.code == "malformed_credentials"
    with KeyManager(
        f"sqlite:///{tmp_path / 'keys.db'}", verifier=Verifier(reader=reader), cache=KeyCache(0)
    ) as manager:
        key = manager.create_key("partner").key
        respelled = [(b"partner-key", key.encode())]
        assert manager.verify_asgi(respelled, b"", (), None, None, True) is None
        assert manager.verify_asgi(respelled).code == "malformed_credentials"
        found = manager.verify_asgi([(b"partner_key", key.encode())], b"", (), None, None, True)
        assert isinstance(found, Candidate) and found.presented == Presented(key, "partner_key")
