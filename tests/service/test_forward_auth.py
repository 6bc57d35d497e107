"""``/auth`` over real HTTP: every catalogue outcome, scope rules, proxies' header dialects;
on each of uvicorn's HTTP protocols (``protocol``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn._path_rules import PathRules
from keyturn.config import ScopeRule, parse_rule
from keyturn.keys import generate_key
from keyturn.outcomes import CATALOGUE
from keyturn.service.identity_headers import IDENTITY_LIMIT
from tests.path_cases import PATH_CASES, RULES, PathCase, oracle_forms, paths, send_raw
from tests.service.conftest import Live, start_live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    """A service with default settings, on ``protocol``."""
    yield from start_live(tmp_path_factory.mktemp("live"), http=protocol)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    """A service with forward-auth scope rules, as a proxy deployment would configure."""
    rules = (
        ScopeRule("/admin/", ("admin",)),
        ScopeRule("/orders", ("orders:read",)),
        ScopeRule("/orders", ("orders:write",), "POST"),
        ScopeRule("/orders/archive", ("archive",)),
    )
    yield from start_live(tmp_path_factory.mktemp("gated"), http=protocol, rules=rules)


def auth(live: Live, headers: dict[str, str] | None = None, path: str = "/auth",
         method: str = "GET") -> httpx.Response:
    return live.client().request(method, path, headers=headers or {})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# Each catalogue outcome, and how to provoke it through /auth.
Provoke = Callable[[Live], dict[str, str]]


def _rotated(live: Live) -> dict[str, str]:
    key, record = live.make_key("api")
    assert live.root.post(f"/v1/keys/{record['id']}/rotate", json={"grace_seconds": 0}).is_success
    return bearer(key)


def _changed(action: str) -> Provoke:
    def provoke(live: Live) -> dict[str, str]:
        key, record = live.make_key("api")
        assert live.root.post(f"/v1/keys/{record['id']}/{action}").is_success
        return bearer(key)

    return provoke


def _expired(live: Live) -> dict[str, str]:
    key, record = live.make_key("api")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert live.root.patch(f"/v1/keys/{record['id']}", json={"expires_at": past}).is_success
    return bearer(key)


def _typo(live: Live) -> dict[str, str]:
    key, _ = live.make_key("api")
    swapped = "A" if key[-1] != "A" else "B"
    return bearer(key[:-1] + swapped)


def _metered(**metering: object) -> Provoke:
    """A key with credits or rate limits (made through the manager: the admin API's metering
    fields are the metering work's), used up by one request when it has a limit of 1."""

    def provoke(live: Live) -> dict[str, str]:
        issued = live.manager.create_key("metered", **metering)  # type: ignore[arg-type]
        if metering.get("rate_limits"):
            assert auth(live, bearer(issued.key)).status_code == 204
        return bearer(issued.key)

    return provoke


PROVOKE: dict[str, Provoke] = {
    "valid": lambda live: bearer(live.make_key("api")[0]),
    "missing_credentials": lambda live: {},
    "unsupported_scheme": lambda live: {"Authorization": f"Token {live.make_key()[0]}"},
    "malformed_credentials": lambda live: {"Authorization": f'Bearer "{live.make_key()[0]}"'},
    "conflicting_credentials": lambda live: {
        **bearer(live.make_key()[0]),
        "x-api-key": live.make_key()[0],
    },
    "credentials_in_query": lambda live: {
        **bearer(live.make_key()[0]),
        "X-Forwarded-Uri": f"/reports?api_key={live.make_key()[0]}",
    },
    "malformed_key": lambda live: bearer("sk_live_" + "a" * 24),
    "checksum_mismatch": _typo,
    "unknown_key": lambda live: bearer(generate_key()),
    "key_expired": _expired,
    "key_revoked": _changed("revoke"),
    "key_disabled": _changed("disable"),
    "key_rotated": _rotated,
    "usage_exceeded": _metered(credits=0),
    "rate_limited": _metered(rate_limits=["1/minute"]),
    # The service's clients connect from 127.0.0.1, which this list leaves out.
    "ip_not_allowed": lambda live: bearer(live.make_key(allowed_ips=["192.0.2.0/24"])[0]),
    "insufficient_scope": lambda live: {
        **bearer(live.make_key("api")[0]),
        "X-Keyturn-Required-Scopes": "billing:write",
    },
}


def test_every_catalogue_outcome_is_provoked_here() -> None:
    outcomes = {o.code for o in CATALOGUE.values() if o.kind == "outcome"}
    assert outcomes <= set(PROVOKE)


@pytest.mark.parametrize("code", sorted(PROVOKE))
def test_each_outcome_gets_its_catalogue_answer(live: Live, code: str) -> None:
    headers = PROVOKE[code](live)
    answer = auth(live, headers)
    outcome = CATALOGUE[code]
    told = {k for k in answer.headers if k.lower().startswith("keyturn-key-")}
    if code == "valid":
        assert answer.status_code == 204
        assert answer.headers["x-keyturn-key-id"].startswith("key_")
        assert answer.content == b""
        # The API's default lifetime, 90 days: the expiry is not due yet (30 days before).
        assert told == set()
        return
    # A refusal says nothing about the key it refused: not when it expires, nor that it
    # was rotated, even when the key is known and its hash matched.
    assert told == set()
    assert answer.status_code == outcome.status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["code"] == code
    assert body["status"] == outcome.status
    assert body["title"] == outcome.title
    assert body["type"] == f"urn:keyturn:outcome:{code}"
    if outcome.status == 429:  # the key is fine: no challenge, but when to come back
        assert "www-authenticate" not in answer.headers
        assert answer.headers["ratelimit-limit"]
        challenge = ""
    else:
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="api"')
        if outcome.error:
            assert f'error="{outcome.error}"' in challenge
    for value in headers.values():  # the answer never repeats a key it was sent
        for key in value.replace('"', " ").replace("=", " ").split():
            if key.startswith("kt_"):
                assert key not in answer.text
                assert key not in challenge


def test_valid_key_identity_headers(live: Live) -> None:
    key, record = live.make_key("orders:read", "api", owner="team-billing")
    answer = auth(live, bearer(key))
    assert answer.status_code == 204
    assert answer.headers["x-keyturn-key-id"] == record["id"]
    assert answer.headers["x-keyturn-owner"] == "team-billing"
    assert answer.headers["x-keyturn-scopes"] == "api orders:read"
    assert "authorization" not in {k.lower() for k in answer.headers}


def test_identity_headers_are_always_sent_and_safe(live: Live) -> None:
    """No owner: the header is empty, not absent (so a proxy overwrites a forged one).
    A non-ASCII owner is percent-encoded UTF-8 instead of breaking the header block."""
    key, _ = live.make_key()
    answer = auth(live, bearer(key))
    assert answer.headers["x-keyturn-owner"] == ""
    assert answer.headers["x-keyturn-scopes"] == ""
    key, _ = live.make_key(owner="Zoë 100%")
    assert auth(live, bearer(key)).headers["x-keyturn-owner"] == "Zo%C3%AB 100%25"
    assert answer.headers["x-keyturn-truncated"] == ""


def test_identity_headers_are_bounded_by_a_stated_rule(live: Live) -> None:
    """A long owner and many scopes would not fit a proxy's header buffer: the headers keep
    the key id, the owner whole or not at all, as many whole scopes as fit, and say so."""
    scopes = [f"scope:{i:03}:" + "x" * 100 for i in range(64)]
    issued = live.manager.create_key("big", scopes=scopes)
    # Longer than the admin layer allows today: a record from before that rule.
    live.manager.store.update(issued.record.id, {"owner": "o" * 5000}, "test", "key.update")
    live.manager.cache.clear()
    key = issued.key
    answer = auth(live, bearer(key))
    assert answer.status_code == 204
    sent = {k: v for k, v in answer.headers.items() if k.startswith("x-keyturn-")}
    assert sum(len(v) for v in sent.values()) <= IDENTITY_LIMIT
    assert sent["x-keyturn-owner"] == ""
    kept = sent["x-keyturn-scopes"].split(" ")
    assert 0 < len(kept) < 64 and kept == sorted(scopes)[: len(kept)]
    assert sent["x-keyturn-truncated"] == "owner scopes"
    # The longest owner the admin API accepts, in a script that encodes longest, fits whole.
    owner = "😀" * 200
    key, _ = live.make_key("a", owner=owner)
    answer = auth(live, bearer(key))
    assert unquote(answer.headers["x-keyturn-owner"]) == owner
    assert answer.headers["x-keyturn-truncated"] == ""


def test_api_key_header_and_any_method(live: Live) -> None:
    key, _ = live.make_key()
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
        assert auth(live, {"x-api-key": key}, method=method).status_code == 204


def test_insufficient_scope_names_the_scopes(live: Live) -> None:
    key, _ = live.make_key("api")
    answer = auth(live, {**bearer(key), "X-Keyturn-Required-Scopes": "api, billing:write"})
    assert answer.status_code == 403
    assert 'scope="api billing:write"' in answer.headers["www-authenticate"]
    assert answer.json()["required_scopes"] == ["api", "billing:write"]


@pytest.mark.parametrize(
    ("where", "uri", "needs"),
    [
        ("X-Forwarded-Uri", "/admin/users", "admin"),  # Traefik, Caddy
        ("X-Original-URI", "/admin/users?page=2", "admin"),  # nginx
        ("X-Forwarded-Uri", "/orders/17", "orders:read"),
        ("X-Forwarded-Uri", "/orders/archive/2019", "archive"),  # longest prefix wins
        ("X-Forwarded-Uri", "/public/../admin/users", "admin"),  # dot segments resolved
        ("X-Forwarded-Uri", "/public/%2e%2e/admin/users", "admin"),  # ... even encoded
        ("X-Forwarded-Uri", "//admin//users", "admin"),  # repeated slashes collapsed
    ],
)
def test_rules_by_forwarded_uri(gated: Live, where: str, uri: str, needs: str) -> None:
    weak, _ = gated.make_key("other")
    strong, _ = gated.make_key(needs)
    assert auth(gated, {**bearer(weak), where: uri}).status_code == 403
    answer = auth(gated, {**bearer(strong), where: uri})
    assert answer.status_code == 204, answer.text


@pytest.mark.parametrize(
    "forged",
    [
        {"X-Forwarded-Uri": "/public"},  # beside nginx's X-Original-URI
        {"X-Original-URI": "/public"},  # beside Traefik's X-Forwarded-Uri
        {"X-Forwarded-Uri": "/public", "X-Forwarded-Method": "GET"},
    ],
)
def test_a_forged_account_of_the_request_cannot_lift_a_rule(
    gated: Live, forged: dict[str, str]
) -> None:
    """A proxy passes the client's headers on, so a client can add its own X-Forwarded-Uri
    beside the proxy's. Every account counts: the request needs the scopes of all."""
    weak, _ = gated.make_key("other")
    admin, _ = gated.make_key("admin")
    for real in ({"X-Original-URI": "/admin/users"}, {"X-Forwarded-Uri": "/admin/users"}):
        headers = [*bearer(weak).items(), *real.items(), *forged.items()]
        assert gated.client().get("/auth", headers=headers).status_code == 403
        headers = [*bearer(admin).items(), *real.items(), *forged.items()]
        assert gated.client().get("/auth", headers=headers).status_code == 204
    # Envoy's path suffix counts too, whatever headers come along.
    answer = gated.client().get("/auth/admin/users", headers={**bearer(weak), **forged})
    assert answer.status_code == 403
    # ... and a key hidden in a second account's query is still found.
    both = {**bearer(weak), "X-Original-URI": "/x", "X-Forwarded-Uri": f"/y?api_key={weak}"}
    assert gated.client().get("/auth", headers=both).json()["code"] == "credentials_in_query"


def test_unmatched_path_needs_no_scope(gated: Live) -> None:
    key, _ = gated.make_key()
    assert auth(gated, {**bearer(key), "X-Forwarded-Uri": "/public/page"}).status_code == 204
    # "/admin/" is a folder rule: "/administrators" is not under it.
    assert auth(gated, {**bearer(key), "X-Forwarded-Uri": "/administrators"}).status_code == 204


def test_method_rule_from_forwarded_method(gated: Live) -> None:
    reader, _ = gated.make_key("orders:read")
    writer, _ = gated.make_key("orders:write")
    post = {"X-Forwarded-Uri": "/orders", "X-Forwarded-Method": "POST"}
    assert auth(gated, {**bearer(reader), **post}).status_code == 403
    assert auth(gated, {**bearer(writer), **post}).status_code == 204
    nginx = {"X-Original-URI": "/orders/9", "X-Original-Method": "GET"}
    assert auth(gated, {**bearer(reader), **nginx}).status_code == 204


def test_envoy_appends_the_original_path(gated: Live) -> None:
    """Envoy's ext_authz HTTP service calls path_prefix + original path (and query)."""
    weak, _ = gated.make_key()
    admin, _ = gated.make_key("admin")
    assert auth(gated, bearer(weak), path="/auth/admin/users?x=1").status_code == 403
    assert auth(gated, bearer(admin), path="/auth/admin/users?x=1").status_code == 204
    assert auth(gated, bearer(weak), path="/auth/public").status_code == 204


def test_scopes_header_adds_to_rules_and_cannot_lift_them(gated: Live) -> None:
    """A client can send the header itself when the proxy does not overwrite it, so it may
    only ask for more scopes, never fewer than the path's rule."""
    key, _ = gated.make_key("admin")
    answer = auth(
        gated,
        {**bearer(key), "X-Forwarded-Uri": "/admin/x", "X-Keyturn-Required-Scopes": ""},
    )
    assert answer.status_code == 204
    weak, _ = gated.make_key("other")
    answer = auth(
        gated,
        {**bearer(weak), "X-Forwarded-Uri": "/admin/x", "X-Keyturn-Required-Scopes": ""},
    )
    assert answer.status_code == 403
    answer = auth(
        gated,
        {**bearer(key), "X-Forwarded-Uri": "/admin/x", "X-Keyturn-Required-Scopes": "audit"},
    )
    assert answer.status_code == 403
    assert answer.json()["required_scopes"] == ["admin", "audit"]


def test_key_in_forwarded_query_is_refused_unless_allowed(tmp_path: Path, protocol: str) -> None:
    for live in start_live(tmp_path, http=protocol, allow_query=True):
        key, _ = live.make_key()
        answer = auth(live, {"X-Forwarded-Uri": f"/x?api_key={key}"})
        assert answer.status_code == 204


def test_custom_realm_and_header_names(tmp_path: Path, protocol: str) -> None:
    for live in start_live(
        tmp_path, http=protocol, realm="orders", api_key_headers=("x-orders-key",),
        scopes_header="X-Need",
    ):
        key, _ = live.make_key("a")
        assert auth(live, {"x-orders-key": key}).status_code == 204
        assert auth(live, {"x-api-key": key}).headers["www-authenticate"] == 'Bearer realm="orders"'
        assert auth(live, {"x-orders-key": key, "X-Need": "b"}).status_code == 403
        ignored = {"x-orders-key": key, "X-Keyturn-Required-Scopes": "b"}
        assert auth(live, ignored).status_code == 204


def test_scopes_header_without_x_prefix_is_read(tmp_path: Path, protocol: str) -> None:
    """Any valid header name may be the scopes header: one not starting with ``X-`` was
    never read, so the scopes a proxy demanded with it were not required (a 204)."""
    for live in start_live(tmp_path, http=protocol, scopes_header="Keyturn-Need"):
        key, _ = live.make_key("a")
        for _ in range(2):  # the second time cached: answered in the protocol itself
            assert auth(live, {**bearer(key), "Keyturn-Need": "b"}).status_code == 403
            assert auth(live, {**bearer(key), "Keyturn-Need": "a"}).status_code == 204


# -- the shared path table: every form of a path needs what its strictest form needs -------


@pytest.fixture(scope="module")
def tabled(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    """A service with the rules every face is held to (tests/path_cases.py)."""
    rules = tuple(parse_rule(pattern, scopes) for pattern, scopes in RULES.items())
    yield from start_live(
        tmp_path_factory.mktemp("tabled"), http=protocol, rules=rules, access_log=False
    )


@pytest.fixture(scope="module")
def keys_by_scopes(tabled: Live) -> Callable[[Iterable[str]], str]:
    """A key holding exactly the given scopes (one per scope set, made once)."""
    made: dict[frozenset[str], str] = {}

    def key(scopes: Iterable[str]) -> str:
        wanted = frozenset(scopes)
        if wanted not in made:
            made[wanted] = tabled.manager.create_key("table", scopes=sorted(wanted)).key
        return made[wanted]

    return key


def _ask(live: Live, dialect: str, case: PathCase, key: str) -> int:
    """``/auth`` asked about ``case`` as a proxy of each kind asks."""
    headers = {"Authorization": f"Bearer {key}"}
    if dialect == "envoy":  # ext_authz: the original path appended to /auth, as it came
        return send_raw(live.url, case.method, "/auth" + case.path, headers).status
    headers[dialect] = case.path
    headers["X-Forwarded-Method" if dialect == "X-Forwarded-Uri" else "X-Original-Method"] = (
        case.method
    )
    return send_raw(live.url, "GET", "/auth", headers).status


# Envoy's ext_authz appends the request target as it came: only forms that can be sent.
DIALECT_CASES = [(dialect, case) for dialect in ("X-Forwarded-Uri", "X-Original-URI", "envoy")
                 for case in PATH_CASES if dialect != "envoy" or case.wire]


@pytest.mark.parametrize(("dialect", "case"), DIALECT_CASES,
                         ids=[f"{dialect}-{case.id}" for dialect, case in DIALECT_CASES])
def test_every_form_needs_the_scopes_of_its_strictest_form(
    tabled: Live, keys_by_scopes: Callable[[Iterable[str]], str], case: PathCase, dialect: str
) -> None:
    for missing in sorted(case.needs):
        assert _ask(tabled, dialect, case, keys_by_scopes(case.needs - {missing})) == 403
    assert _ask(tabled, dialect, case, keys_by_scopes(case.needs)) == 204


@pytest.mark.parametrize(
    "header", ["X-Original-URL", "X-Rewrite-URL", "X_Original_URL", "x-rewrite_url"]
)
def test_a_uri_header_some_frameworks_route_on_is_one_more_account(
    gated: Live, header: str
) -> None:
    """Zend and older Symfony take the URI from these headers, which a proxy passes on; a
    PHP upstream reads ``X_Original_URL`` as ``X-Original-URL`` (``HTTP_X_ORIGINAL_URL``)."""
    weak, _ = gated.make_key("other")
    admin, _ = gated.make_key("admin")
    for real in ({"X-Original-URI": "/public"}, {"X-Forwarded-Uri": "/public"}, {}):
        sent = {**real, header: "/admin/users"}
        assert auth(gated, {**bearer(weak), **sent}).status_code == 403
        assert auth(gated, {**bearer(admin), **sent}).status_code == 204


def test_a_method_override_is_one_more_account(gated: Live) -> None:
    """Some frameworks handle a request as the method an override header names."""
    reader, _ = gated.make_key("orders:read")
    both, _ = gated.make_key("orders:read", "orders:write")
    names = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
    # ... under every name a CGI-style upstream (PHP, Rack) reads as one of them.
    respelled = ("X_HTTP_Method_Override", "x-http_method", "X_Method-Override")
    for name in names + respelled:
        sent = {"X-Forwarded-Uri": "/orders", "X-Forwarded-Method": "GET", name: "POST"}
        assert auth(gated, {**bearer(reader), **sent}).status_code == 403
        assert auth(gated, {**bearer(both), **sent}).status_code == 204
    # Envoy: the request's own method counts beside the override.
    answer = auth(gated, {**bearer(reader), "X-HTTP-Method-Override": "POST"}, "/auth/orders")
    assert answer.status_code == 403


def test_accounts_by_the_thousand_are_judged_once_per_method_the_rules_name(
    gated: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every method named beside every URI was judged: 100 URIs and a header of 1,000
    methods were 100,000 judgements, seconds during which the server answered nobody. A
    method no rule names needs what any other such method needs, so the judgements are
    one per method a rule names (and one for the rest) per distinct path."""
    judged: list[tuple[str, str]] = []
    requirement = PathRules.requirement

    def counted(self: PathRules, method: str, path: str) -> object:
        judged.append((method, path))
        return requirement(self, method, path)

    monkeypatch.setattr(PathRules, "requirement", counted)
    reader, _ = gated.make_key("orders:read")
    both, _ = gated.make_key("orders:read", "orders:write")
    uris = {"X-Forwarded-Uri": "/orders", "X-Original-URI": "/orders/7"}
    many = [f"M{i}" for i in range(1000)]
    for methods, needs_write in ((many, False), ([*many, "post"], True)):
        sent = {**uris, "X-Forwarded-Method": ",".join(methods)}
        judged.clear()
        assert auth(gated, {**bearer(reader), **sent}).status_code == (403 if needs_write else 204)
        assert len(judged) <= 4 * 2, judged[:10]  # GET, HEAD, POST and the rest; two paths
        assert auth(gated, {**bearer(both), **sent}).status_code == 204


def test_more_uris_than_any_proxy_tells_need_every_rules_scopes(gated: Live) -> None:
    """Reading a path in all its forms can take milliseconds, and a client can add URI
    headers up to the head's limit: past eight distinct paths (no proxy tells more than
    three), the request needs every rule's scopes instead of being read."""
    reader, _ = gated.make_key("orders:read")
    every, _ = gated.make_key("orders:read", "orders:write", "admin", "archive")
    told = [f"/orders/{i}" for i in range(8)]
    for uris, reader_status in ((told, 204), ([*told, "/orders/8"], 403)):
        sent = [("Authorization", f"Bearer {reader}")]
        sent += [("X-Forwarded-Uri", path) for path in uris]
        assert gated.client().get("/auth", headers=sent).status_code == reader_status
        sent[0] = ("Authorization", f"Bearer {every}")
        assert gated.client().get("/auth", headers=sent).status_code == 204


def test_long_paths_told_beside_each_other_need_every_rules_scopes(gated: Live) -> None:
    """One path up to the engine's length cap is read in all its forms; a client adding
    accounts must not multiply that: distinct paths of more than 2,048 characters together
    need every rule's scopes instead of being read."""
    reader, _ = gated.make_key("orders:read")
    every, _ = gated.make_key("orders:read", "orders:write", "admin", "archive")
    long_ = "/orders/" + "A/" * 500  # 1,008 characters, not plain: read in all its forms
    for uris, reader_status in (
        ([long_, long_, long_], 204),  # one distinct path, whatever the number of accounts
        ([long_, long_ + "x"], 204),  # 2,017 characters in all
        ([long_, long_ + "x" * 40], 403),  # 2,056
    ):
        sent = [("Authorization", f"Bearer {reader}")]
        sent += [("X-Forwarded-Uri", path) for path in uris]
        assert gated.client().get("/auth", headers=sent).status_code == reader_status
        sent[0] = ("Authorization", f"Bearer {every}")
        assert gated.client().get("/auth", headers=sent).status_code == 204


@pytest.mark.parametrize(
    "query",
    [
        "_method=POST", "_method=post", "%5Fmethod=POST", "a=1&_method=P%4FST", "_method=POST&",
        "X-HTTP-Method-Override=POST", "x-http-method-override=post", "a=1;X-HTTP-Method=POST",
        "x%2Dmethod%2Doverride=POST",
    ],
)  # fmt: skip
def test_a_method_override_in_the_query_is_one_more_account(gated: Live, query: str) -> None:
    """Laravel, Symfony and Express's method-override take the method from ``_method`` in
    the query, ASP.NET MVC from ``X-HTTP-Method-Override`` there as well as in a header:
    ``GET /orders?_method=POST`` may be handled as a POST."""
    reader, _ = gated.make_key("orders:read")
    both, _ = gated.make_key("orders:read", "orders:write")
    for proxied in (
        {"X-Forwarded-Uri": f"/orders?{query}", "X-Forwarded-Method": "GET"},
        {"X-Original-URI": f"/orders?{query}"},
    ):
        assert auth(gated, {**bearer(reader), **proxied}).status_code == 403
        assert auth(gated, {**bearer(both), **proxied}).status_code == 204
    # Envoy: the query on /auth itself.
    assert auth(gated, bearer(reader), f"/auth/orders?{query}").status_code == 403


def test_head_needs_what_get_needs(tmp_path: Path, protocol: str) -> None:
    rules = (ScopeRule("/reports", ("reports:read",), "GET"),)
    for live in start_live(tmp_path, http=protocol, rules=rules):
        key, _ = live.make_key()
        for sent in ({"X-Forwarded-Method": "HEAD"}, {"X-Original-Method": "head"}):
            headers = {**bearer(key), "X-Forwarded-Uri": "/reports/1", **sent}
            assert auth(live, headers).status_code == 403
        assert auth(live, bearer(key), "/auth/reports", method="HEAD").status_code == 403


# A property over HTTP: any rule set, any paths.

SCOPE_NAMES = ["s1", "s2", "s3"]
RULE_SPECS = st.tuples(
    st.sampled_from(["", "GET ", "POST "]),
    st.lists(st.sampled_from(["a", "admin", "x"]), max_size=2).map(lambda s: "/" + "/".join(s)),
).map("".join)


def _needed(rules: dict[str, list[str]], method: str, path: str) -> set[str]:
    """The scopes of the most specific rule over every place an upstream may route to."""
    needed: set[str] = set()
    for form in oracle_forms(path):
        best: tuple[tuple[int, bool], list[str]] = ((-1, False), [])
        for spec, scopes in rules.items():
            rule_method, _, prefix = spec.rpartition(" ")
            prefix = prefix.rstrip("/") or "/"
            if rule_method and rule_method != method:
                continue
            if prefix == "/" or form.rstrip("/") == prefix or form.startswith(prefix + "/"):
                rank = (0 if prefix == "/" else prefix.count("/"), bool(rule_method))
                best = max(best, (rank, scopes))
        needed.update(best[1])
    return needed


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.dictionaries(RULE_SPECS, st.lists(st.sampled_from(SCOPE_NAMES), min_size=1, max_size=2),
                    min_size=1, max_size=5),
    st.lists(st.tuples(st.sampled_from(["GET", "POST"]), paths(printable=True)), max_size=15),
)
def test_no_path_gets_past_a_rule_whose_scopes_the_key_lacks(
    tmp_path_factory: pytest.TempPathFactory,
    protocol: str,
    rules: dict[str, list[str]],
    requests: list[tuple[str, str]],
) -> None:
    """For any rule set and any path: wherever an upstream may route the path, ``/auth``
    answers 2xx only to a key holding the scopes of the rule that covers that place."""
    table = tuple(parse_rule(pattern, scopes) for pattern, scopes in rules.items())
    for live in start_live(
        tmp_path_factory.mktemp("any"), http=protocol, rules=table, access_log=False
    ):
        every = live.manager.create_key("every", scopes=SCOPE_NAMES).key
        short = {s: live.manager.create_key("short", scopes=[x for x in SCOPE_NAMES if x != s]).key
                 for s in SCOPE_NAMES}
        for method, path in requests:
            sent = {"X-Forwarded-Uri": path, "X-Forwarded-Method": method}
            assert auth(live, {**bearer(every), **sent}).status_code == 204
            for scope in _needed(rules, method, path):
                assert auth(live, {**bearer(short[scope]), **sent}).status_code == 403, scope


def test_a_forged_key_flood_from_one_client_is_throttled_while_others_pass(
    tmp_path: Path, protocol: str
) -> None:
    """Behind a trusted proxy, one client sending fresh forged keys (well formed, never
    issued: each a store read) is refused 429 once past its bound, before any lookup; a
    key of another client behind the same proxy, never asked for before, still passes."""
    import time

    from keyturn._store_reads import BURST, RATE

    for live in start_live(tmp_path, http=protocol, trusted_proxies=("127.0.0.1",)):
        issued, _ = live.make_key()
        client = live.client()

        def ask(key: str, who: str, client: httpx.Client = client) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}", "x-forwarded-for": who}
            return client.get("/auth", headers=headers)

        started = time.monotonic()
        answers = [ask(generate_key(), "203.0.113.9") for _ in range(BURST + 60)]
        refilled = (time.monotonic() - started) * RATE  # what the bound regained meanwhile
        codes = [answer.status_code for answer in answers]
        assert codes[:BURST] == [401] * BURST
        # Past the burst, only what the bound regained meanwhile may pass (a slow machine
        # regains a token now and then, so the last answer may be such a pass).
        assert codes.count(429) >= 60 - refilled - 1
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.json()["code"] == "lookups_throttled"
        assert int(refused.headers["retry-after"]) >= 1
        assert "www-authenticate" not in refused.headers  # the credentials are not at fault
        assert ask(issued, "198.51.100.7").status_code == 204
        assert ask(generate_key(), "198.51.100.7").json()["code"] == "unknown_key"
