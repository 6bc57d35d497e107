"""Two keys in the query are two credentials, as two headers are.

With ``allow_query`` on, the reader took the first credential parameter and ignored the
rest: ``?api_key=A&api_key=B`` or ``?api_key=A&key=B`` was judged as A, while an upstream
that reads the query itself may take B (Django, Rails and PHP keep the last repeated
value; another parameter name is another reading). Two ``Authorization`` headers, or a
header and the query holding different keys, are ``conflicting_credentials``; now so are
two query parameters holding different keys, on ``/auth`` (both protocols) and every other
face (one reader). The same key twice is still one credential."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from keyturn.credentials import CredentialReader, Rejection
from tests.service.conftest import Live, protocol, start_live

__all__ = ["protocol"]


@pytest.fixture(scope="module")
def querying(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("query"), http=protocol, allow_query=True)


@pytest.mark.parametrize("shape", ["api_key={a}&api_key={b}", "api_key={a}&key={b}",
                                   "access_token={a}&x=1&apikey={b}"])
def test_two_keys_in_the_query_conflict(querying: Live, shape: str) -> None:
    a, _ = querying.make_key()
    b, _ = querying.make_key()
    for target in (f"/auth?{shape.format(a=a, b=b)}",
                   f"/auth/orders?{shape.format(a=a, b=b)}"):
        answer = httpx.get(querying.url + target, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "conflicting_credentials"
        assert a not in answer.text and b not in answer.text
    proxied = {"x-forwarded-uri": f"/orders?{shape.format(a=a, b=b)}"}
    answer = httpx.get(querying.url + "/auth", headers=proxied, timeout=10)
    assert answer.status_code == 400 and answer.json()["code"] == "conflicting_credentials"


def test_the_same_key_twice_is_one(querying: Live) -> None:
    a, _ = querying.make_key()
    answer = httpx.get(f"{querying.url}/auth?api_key={a}&key={a}", timeout=10)
    assert answer.status_code == 204, answer.text


def test_the_reader_says_so_for_every_face() -> None:
    reader = CredentialReader(allow_query=True)
    found = reader.read([], "api_key=kt_live_one&api_key=kt_live_two")
    assert isinstance(found, Rejection) and found.code == "conflicting_credentials"
