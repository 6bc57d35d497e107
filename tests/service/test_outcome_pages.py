"""The outcome catalogue served by ``keyturn serve`` (``GET /outcomes``), and problem types
that dereference to it when ``public_url`` is set.

A real server on loopback whose ``public_url`` is its own address, so that the ``type`` of
every refusal it sends can be fetched from it, as a consumer's browser would.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyturn._outcome_search import words
from keyturn.outcomes import CATALOGUE
from keyturn.ui.render import CONTENT_SECURITY_POLICY
from tests.service.conftest import Live, start_live

CODES = sorted(CATALOGUE)
FORMATS = {"html": "text/html", "json": "application/json", "md": "text/markdown"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A service whose public address is its own loopback address."""
    port = _free_port()
    yield from start_live(tmp_path_factory.mktemp("public"), port=port,
                          public_url=f"http://127.0.0.1:{port}/", access_log=False)


@pytest.fixture(scope="module")
def web(public: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=public.url, timeout=10) as client:
        yield client


def _pages(web: httpx.Client) -> str:
    return str(web.base_url).rstrip("/") + "/outcomes/"


def _kind(response: httpx.Response) -> str:
    media = response.headers["content-type"].split(";")[0]
    return {v: k for k, v in FORMATS.items()}[media]


def _is_page_of(response: httpx.Response, code: str) -> None:
    """``response`` is the catalogue entry of ``code``, in whichever format it came."""
    assert response.status_code == 200, (code, response.status_code, response.text[:200])
    kind = _kind(response)
    if kind == "json":
        assert response.json()["code"] == code
        assert response.json()["title"] == CATALOGUE[code].title
    elif kind == "md":
        assert response.text.startswith(f"### `{code}` — ")
    else:
        assert f"<code>{code}</code> — " in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


# -- every code, every format --------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_every_code_resolves_in_all_three_formats(web: httpx.Client, code: str) -> None:
    for fmt, media in FORMATS.items():
        by_suffix = web.get(f"/outcomes/{code}.{fmt}")
        _is_page_of(by_suffix, code)
        assert _kind(by_suffix) == fmt
        by_accept = web.get(f"/outcomes/{code}", headers={"accept": media})
        _is_page_of(by_accept, code)
        assert _kind(by_accept) == fmt
    assert _kind(web.get(f"/outcomes/{code}")) == "html"  # no Accept: for people


def test_the_index_lists_every_code_in_all_three_formats(web: httpx.Client) -> None:
    listed = web.get("/outcomes.json").json()
    assert [e["code"] for e in listed] == list(CATALOGUE)
    assert all(e["type"] == f"{_pages(web)}{e['code']}" for e in listed)
    markdown = web.get("/outcomes.md").text
    assert all(f"### `{code}`" in markdown for code in CODES)
    page = web.get("/outcomes", headers={"accept": "text/html,*/*;q=0.8"}).text
    assert all(f'href="outcomes/{code}"' in page for code in CODES)
    # The index says which addresses are stable, under the deployment's public address.
    assert "These addresses are stable" in page
    assert f"<code>{_pages(web)}{{code}}.json</code>" in page
    assert web.get("/outcomes", headers={"accept": "text/markdown"}).text == markdown


def test_browsers_json_clients_and_markdown_readers_are_told_apart() -> None:
    from keyturn.ui.outcome_pages import negotiate

    assert negotiate(None) == "html" and negotiate("*/*") == "html"
    assert negotiate("text/html,application/xhtml+xml,*/*;q=0.8") == "html"
    assert negotiate("application/json") == "json"
    assert negotiate("application/problem+json, text/html;q=0.5") == "json"
    assert negotiate("text/markdown;q=0.9, application/json;q=0.1") == "md"
    assert negotiate("image/png") is None and negotiate("text/html;q=0") is None


# -- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_search_finds_each_code_by_a_word_of_its_title(web: httpx.Client, code: str) -> None:
    title = words(CATALOGUE[code].title)
    ranked = {w: [e["code"] for e in web.get("/outcomes.json", params={"q": w}).json()]
              for w in title}
    assert any(code in found[:3] for found in ranked.values()), ranked
    assert all(code in found for found in ranked.values()), ranked


def test_search_is_ranked_and_tolerates_typos(web: httpx.Client) -> None:
    def first(query: str) -> str:
        return str(web.get("/outcomes.json", params={"q": query}).json()[0]["code"])

    assert first("KEY_EXPIRED") == "key_expired"
    assert first("insuficient scope") == "insufficient_scope"
    assert first("revokd") == "key_revoked"
    page = web.get("/outcomes", params={"q": "expird"}).text
    assert 'href="outcomes/key_expired"' in page and 'value="expird"' in page
    assert web.get("/outcomes.json", params={"q": "zzzqqq"}).json() == []


@pytest.mark.parametrize("query", ["x" * 10_000, "\u202e<script>alert(1)</script>", "%00", " "])
def test_any_query_gets_a_page_never_an_error(web: httpx.Client, query: str) -> None:
    for path in ("/outcomes", "/outcomes.json", "/outcomes.md"):
        answer = web.get(path, params={"q": query})
        assert answer.status_code == 200
        assert "<script>alert" not in answer.text


# -- addresses ------------------------------------------------------------------------------


def test_a_code_in_another_case_redirects_to_its_one_address(web: httpx.Client) -> None:
    moved = web.get("/outcomes/KEY_EXPIRED.json")
    assert moved.status_code == 308
    _is_page_of(web.get("/outcomes/Key_Expired", follow_redirects=True), "key_expired")
    assert web.get("/outcomes/KEY_EXPIRED.json", follow_redirects=True).json()["code"] == (
        "key_expired")


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unknown_code_is_404_with_the_nearest(web: httpx.Client, fmt: str) -> None:
    answer = web.get(f"/outcomes/key_expird.{fmt}")
    assert answer.status_code == 404
    if fmt == "json":
        body = answer.json()
        assert body["code"] == "not_found" and "key_expired" in body["did_you_mean"]
        assert body["type"] == f"{_pages(web)}not_found"
    elif fmt == "html":
        assert 'href="key_expired"' in answer.text


def test_only_reading_and_only_the_three_formats(web: httpx.Client) -> None:
    assert web.head("/outcomes/key_expired").status_code == 200
    assert web.post("/outcomes/key_expired").status_code == 405
    refused = web.get("/outcomes/key_expired", headers={"accept": "image/png"})
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"


def test_the_pages_carry_the_dashboards_headers_and_no_script(web: httpx.Client) -> None:
    for path in ("/outcomes", "/outcomes/key_expired", "/outcomes/nope"):
        page = web.get(path)
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["x-frame-options"] == "DENY"
        assert "<script" not in page.text
    css = web.get("/outcomes/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_related_codes_are_linked(web: httpx.Client) -> None:
    page = web.get("/outcomes/key_expired").text
    for code in CATALOGUE["key_expired"].related:
        assert f'href="{code}"' in page
    assert "key_rotated" in CATALOGUE["key_expired"].related
    markdown = web.get("/outcomes/key_expired.md").text
    assert "[`key_rotated`](key_rotated.md)" in markdown


# -- problem types that dereference ---------------------------------------------------------


def _refusals(public: Live) -> Iterator[tuple[str, httpx.Response]]:
    """(the code expected, a refusal the service sent) from each kind of face."""
    anyone = public.client()
    yield "missing_credentials", anyone.get("/auth")
    yield "malformed_key", anyone.get("/auth", headers={"authorization": "Bearer kt_live_x"})
    key, record = public.make_key("orders:read")
    assert public.root.post(f"/v1/keys/{record['id']}/revoke").status_code == 200
    yield "key_revoked", anyone.get("/auth", headers={"authorization": f"Bearer {key}"})
    reader, _ = public.make_key("keys:read")
    yield "insufficient_scope", public.client(reader).post("/v1/keys", json={"name": "x"})
    yield "key_not_found", public.root.get("/v1/keys/key_nope")
    yield "invalid_request", public.root.post("/v1/keys", json={"name": 5})
    yield "method_not_allowed", anyone.post("/healthz")


def test_a_refused_requests_type_dereferences_to_its_codes_page(
    public: Live, web: httpx.Client
) -> None:
    seen = set()
    for code, refusal in _refusals(public):
        body: dict[str, Any] = refusal.json()
        assert body["code"] == code, body
        assert body["type"] == f"{public.url}/outcomes/{code}", body
        seen.add(code)
        with httpx.Client(timeout=10) as browser:  # whoever got the answer opens its type
            _is_page_of(browser.get(body["type"]), code)
            _is_page_of(browser.get(body["type"], headers={"accept": "application/json"}), code)
    assert len(seen) == 7


def test_the_openapi_document_says_what_type_is(web: httpx.Client, live: Live) -> None:
    schema = web.get("/openapi.json").json()["components"]["schemas"]["Problem"]
    typed = schema["properties"]["type"]
    assert typed["format"] == "uri"
    assert f"{_pages(web)}" in typed["description"]
    plain = live.client().get("/openapi.json").json()["components"]["schemas"]["Problem"]
    assert "urn:keyturn:outcome:" in plain["properties"]["type"]["description"]
    assert live.client().get("/auth").json()["type"] == "urn:keyturn:outcome:missing_credentials"


def test_the_doctor_links_a_keyturn_refusal_to_its_page(public: Live, web: httpx.Client) -> None:
    """A consumer runs `keyturn doctor` against an API behind keyturn: the finding that
    carries keyturn's own code links the page, in JSON, text and Markdown."""
    from click.testing import CliRunner

    from keyturn.cli import main

    key, record = public.make_key("orders:read")
    assert public.root.post(f"/v1/keys/{record['id']}/revoke").status_code == 200
    page = f"{_pages(web)}key_revoked"
    runs = {
        fmt: CliRunner().invoke(main, ["doctor", f"{public.url}/auth", "--key-stdin",
                                       "--no-keyring", "--format", fmt], input=key)
        for fmt in ("json", "text", "markdown")
    }
    found = json.loads(runs["json"].stdout)["findings"]
    revoked = next(f for f in found if f["code"] == "key_revoked")
    assert revoked["url"] == page
    assert all("url" not in f for f in found if f["code"] != "key_revoked")
    assert f"more: {page}" in runs["text"].stdout
    assert f"*More:* <{page}>" in runs["markdown"].stdout
    _is_page_of(httpx.get(revoked["url"], timeout=10), "key_revoked")
    assert all(key not in run.output for run in runs.values())


def test_the_catalogue_is_served_with_the_dashboard_turned_off(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Problem types may point at it whatever else the deployment serves."""
    for live in start_live(tmp_path_factory.mktemp("bare"), ui=False, portal=False,
                           access_log=False):
        assert live.client().get("/ui/login").status_code == 404
        _is_page_of(live.client().get("/outcomes/key_expired"), "key_expired")
        css = live.client().get("/outcomes/static/style.css")
        assert css.status_code == 200
