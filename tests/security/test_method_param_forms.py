"""``_method`` in the query as every parser reads it, not only as Python's ``parse_qsl``.

``/auth`` counts ``?_method=POST`` as one more account of the request (Laravel, Symfony,
Express's method-override route it as a POST), but it read the query one way: pairs split
at ``&`` only, names and values whole. Parsers disagree: some split pairs at ``;`` as well
(Go before 1.17, Python's before 3.9.2, Rack 2, PHP with ``arg_separator.input = "&;"``),
some end the query at a ``#`` a client sent raw (Node's ``url.parse``, which Express's
method-override reads the query with), and PHP ends a parameter's name at a NUL
(``_method%00=POST`` is ``$_GET['_method']``). A ``GET`` key then reached a ``POST``
rule's handler; so did ``.method`` (PHP's ``_method``) and ``_Method`` (the test in
front of the reader looked for ``method``/``METHOD``). Like every other account, each
reading now adds its method (a forged one can only make the request stricter), on both of
uvicorn's protocols."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from keyturn.config import ScopeRule
from tests.service.conftest import Live, protocol, start_live

__all__ = ["protocol"]  # each of uvicorn's HTTP protocols (h11, httptools) in turn

FORMS = [
    "a=1;_method=POST",
    "_method=POST;a=1",
    "a=1&amp;_method=POST",
    "_method=POST#x",
    "_method%00=POST",
    "_method%00x=POST",
    # PHP turns ".", a space ("+") and an unmatched "[" (and chr(128)-chr(159)) into "_"
    ".method=POST",
    "%2Emethod=POST",
    "[method=POST",
    "%80method=POST",
    # read case-insensitively (ASP.NET compares names so): the test in front agrees
    "_Method=POST",
    "_METHOD=POST",
]


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    rules = (ScopeRule("/orders", ("orders:write",), "POST"),)
    yield from start_live(tmp_path_factory.mktemp("forms"), http=protocol, rules=rules)


def auth(live: Live, key: str, uri: str) -> int:
    headers = {"authorization": f"Bearer {key}", "x-forwarded-uri": uri,
               "x-forwarded-method": "GET"}
    return httpx.get(f"{live.url}/auth", headers=headers, timeout=10).status_code


@pytest.mark.parametrize("query", FORMS)
def test_each_reading_of_the_query_counts(gated: Live, query: str) -> None:
    reader, _ = gated.make_key("orders:read")
    writer, _ = gated.make_key("orders:read", "orders:write")
    for _ in range(2):  # the second time cached: answered in the protocol itself
        assert auth(gated, reader, f"/orders?{query}") == 403
        assert auth(gated, writer, f"/orders?{query}") == 204


def test_a_plain_query_still_passes(gated: Live) -> None:
    reader, _ = gated.make_key("orders:read")
    assert auth(gated, reader, "/orders?page=2;sort=name&q=a%00b#top") == 204
