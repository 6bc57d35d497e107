"""The probe against loopback servers that behave like the real APIs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from keyturn import KeyManager
from keyturn.doctor import diagnose, render_markdown, render_text
from keyturn.doctor.probe import keeps_key
from keyturn.doctor.report import Report
from tests.doctor.apis import (
    ANTHROPIC_VERSION,
    Api,
    Reply,
    Respond,
    anthropic_like,
    keyturn_service,
    openai_like,
    redirect_to,
    rfc6750_bearer,
    same_origin_redirect,
    scope_403,
    slack_like,
)
from tests.doctor.conftest import anthropic_key, assert_hidden, openai_key, slack_token

Serve = Callable[[Respond], Api]


def everywhere(report: Report) -> str:
    """Every rendering of the report, for asserting the key is in none of them."""
    return "\n".join([json.dumps(report.as_dict()), render_text(report), render_markdown(report)])


# -- a Bearer-only API (OpenAI) ---------------------------------------------------------------


def test_the_right_key_sent_the_documented_way_is_auth_ok(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    report = diagnose(api.url("/v1/models"), provider="openai")
    assert report.ok
    assert report.codes[-1] == "auth_ok"
    assert report.probe is not None and report.probe.status == 200
    assert api.seen[0].header("authorization") == f"Bearer {key}"
    assert_hidden(everywhere(report), key)


def test_a_wrong_key_is_server_rejected_key_with_the_servers_words(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = openai_key()
    api = serve(openai_like(openai_key()))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    report = diagnose(api.url("/v1/models"), provider="openai")
    assert not report.ok
    assert report.step("probe").status == "failed"
    rejected = report.findings[report.codes.index("server_rejected_key")]
    assert "HTTP 401" in rejected.detail
    assert "invalid_api_key" in rejected.detail and "Incorrect API key" in rejected.detail
    assert_hidden(everywhere(report), key)


def test_x_api_key_to_a_bearer_api_is_header_wrong_and_variants_find_bearer(
    serve: Serve,
) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    report = diagnose(api.url("/v1/models"), provider="openai", key=key, send_as="x-api-key",
                      try_other_ways=True)
    assert report.codes.count("header_wrong") == 1  # offline, not repeated by the probe
    assert "rejected_as_sent" in report.codes and "server_rejected_key" not in report.codes
    assert report.working_variant == "bearer"
    assert "variant_works" in report.codes
    assert not report.ok  # the request as the user sends it still fails
    assert report.probe is not None
    assert [(t.way, t.status) for t in report.probe.variants] == [("bearer", 200)]
    assert len(api.seen) == 2  # the request, and the one variant listed
    assert all(s.header("x-api-key") in (None, key) for s in api.seen)


def test_a_challenge_without_error_means_the_key_was_not_found_there(serve: Serve) -> None:
    key = "0123456789abcdefABCDEF"
    api = serve(rfc6750_bearer(key))
    report = diagnose(api.url("/v1/things"), key=key, send_as="x-api-key")
    assert report.provider is None
    assert {"rejected_as_sent", "header_wrong"} <= set(report.codes)
    assert "server_rejected_key" not in report.codes
    wrong = report.findings[report.codes.index("header_wrong")]
    assert "'Bearer'" in wrong.detail and "x-api-key: <key>" in wrong.detail


def test_a_token_scheme_against_a_bearer_challenge_is_scheme_wrong(serve: Serve) -> None:
    key = "0123456789abcdefABCDEF"
    api = serve(rfc6750_bearer(key))
    report = diagnose(api.url("/"), key=key, send_as="token")
    assert {"rejected_as_sent", "scheme_wrong"} <= set(report.codes)


def test_an_invalid_token_error_is_not_blamed_on_the_header(serve: Serve) -> None:
    api = serve(rfc6750_bearer("the-right-key-0123456789"))
    report = diagnose(api.url("/"), key="a-wrong-key-0123456789")
    assert "server_rejected_key" in report.codes
    assert "header_wrong" not in report.codes and "scheme_wrong" not in report.codes
    detail = report.findings[report.codes.index("server_rejected_key")].detail
    assert 'error="invalid_token"' in detail and "unknown key" in detail


# -- an x-api-key API with a required version header (Anthropic) -----------------------------


def test_the_doctor_sends_anthropics_documented_headers(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    report = diagnose(api.url("/v1/models"), provider="anthropic", key=key)
    assert report.ok and report.codes[-1] == "auth_ok"
    assert api.seen[0].header("anthropic-version") == ANTHROPIC_VERSION
    assert api.seen[0].header("x-api-key") == key


def test_without_the_version_header_the_refusal_is_put_on_the_header(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    report = diagnose(api.url("/v1/models"), provider="anthropic", key=key, send_as="x-api-key")
    assert "missing_required_header" in report.codes
    assert "rejected_as_sent" in report.codes and "server_rejected_key" not in report.codes
    assert "anthropic-version: header is required" in report.findings[
        report.codes.index("rejected_as_sent")].detail
    assert not report.ok


def test_a_missing_version_header_named_by_the_server_is_found_for_any_api(
    serve: Serve,
) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    report = diagnose(api.url("/v1/models"), key=key, send_as="x-api-key")
    assert report.provider is None
    missing = report.findings[report.codes.index("missing_required_header")]
    assert "'anthropic-version'" in missing.detail


def test_bearer_to_anthropic_finds_x_api_key_plus_version(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    report = diagnose(api.url("/v1/models"), provider="anthropic", key=key, send_as="bearer",
                      try_other_ways=True)
    assert {"header_wrong", "missing_required_header", "rejected_as_sent"} <= set(
        report.codes)
    assert "server_rejected_key" not in report.codes
    assert report.working_variant == "x-api-key + anthropic-version"
    assert_hidden(everywhere(report), key)


def test_user_headers_are_sent_as_given_with_key_substituted(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    report = diagnose(api.url("/v1/models"), provider="anthropic", key=key, headers=[
        ("x-api-key", "$KEY"), ("anthropic-version", ANTHROPIC_VERSION), ("X-Trace", "t1")])
    assert report.ok
    assert api.seen[0].header("x-trace") == "t1"
    assert report.codes == ["key_source", "key_identified", "auth_ok"]


def test_a_key_typed_into_a_header_is_taken_from_there(serve: Serve) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    report = diagnose(api.url("/v1/models"), provider="openai",
                      headers=[("Authorization", f"Bearer {key}")])
    assert report.ok
    assert report.key_source == "the -H 'Authorization' header"
    assert_hidden(everywhere(report), key)


# -- a gateway that matches "Bearer " byte for byte -----------------------------------------


def test_lowercase_bearer_fails_at_a_case_sensitive_gateway(serve: Serve) -> None:
    key = "0123456789abcdefABCDEF"
    api = serve(rfc6750_bearer(key, case_sensitive=True))
    report = diagnose(api.url("/"), key=key, headers=[("Authorization", "bearer $KEY")],
                      try_other_ways=True)
    assert "scheme_lowercase" in report.codes
    assert "rejected_as_sent" in report.codes and "server_rejected_key" not in report.codes
    assert report.working_variant == "bearer"
    assert api.seen[-1].header("authorization") == f"Bearer {key}"


def test_canonical_bearer_passes_the_same_gateway(serve: Serve) -> None:
    key = "0123456789abcdefABCDEF"
    api = serve(rfc6750_bearer(key, case_sensitive=True))
    assert diagnose(api.url("/"), key=key).ok


# -- redirects ---------------------------------------------------------------------------------


def test_a_redirect_to_another_origin_is_not_followed_with_the_key(serve: Serve) -> None:
    key = openai_key()
    elsewhere = serve(openai_like(key))
    api = serve(redirect_to(elsewhere.url("/v1/models")))
    report = diagnose(api.url("/v1/models"), provider="openai", key=key)
    assert "redirect_dropped_auth" in report.codes
    found = report.findings[report.codes.index("redirect_dropped_auth")]
    assert elsewhere.url("/v1/models") in found.detail
    assert found.fix == f"call {elsewhere.url('/v1/models')} directly"
    assert not report.ok
    assert elsewhere.seen == []  # the other origin got nothing at all, let alone the key
    assert api.received(key)


def test_localhost_and_127_0_0_1_are_different_origins(serve: Serve) -> None:
    key = openai_key()
    elsewhere = serve(openai_like(key))
    target = elsewhere.url("/v1/models").replace("127.0.0.1", "localhost")
    api = serve(redirect_to(target, 307))
    report = diagnose(api.url("/"), provider="openai", key=key)
    assert "redirect_dropped_auth" in report.codes
    assert not elsewhere.received(key)


def test_a_redirect_within_the_origin_is_followed_with_the_key(serve: Serve) -> None:
    key = "0123456789abcdefABCDEF"
    api = serve(same_origin_redirect(key))
    report = diagnose(api.url("/old"), key=key)
    assert report.ok
    assert report.probe is not None and report.probe.redirects == (f"308 → {api.url('/new')}",)
    assert [s.path for s in api.seen] == ["/old", "/new"]


@pytest.mark.parametrize(
    ("source", "target", "keeps"),
    [
        ("https://a.example/x", "https://a.example/y", True),
        ("https://a.example/x", "https://a.example:443/y", True),
        ("http://a.example/x", "https://a.example/y", True),  # the upgrade clients allow
        ("https://a.example/x", "http://a.example/y", False),
        ("https://a.example/x", "https://b.example/y", False),
        ("https://a.example/x", "https://a.example:8443/y", False),
        ("http://127.0.0.1:1/x", "http://localhost:1/x", False),
    ],
)
def test_which_redirects_keep_the_key(source: str, target: str, keeps: bool) -> None:
    assert keeps_key(source, target) is keeps


# -- 403 for a missing scope -------------------------------------------------------------------


def test_a_missing_scope_is_insufficient_permissions_naming_the_scope(serve: Serve) -> None:
    key = "0123456789abcdefABCDEF"
    api = serve(scope_403(key, "repo:write"))
    report = diagnose(api.url("/repos/x"), key=key, method="post")
    assert "insufficient_permissions" in report.codes
    assert "server_rejected_key" not in report.codes
    assert "the key lacks: repo:write" in report.findings[
        report.codes.index("insufficient_permissions")].detail
    assert api.seen[0].method == "POST"


# -- 200 with "ok": false (Slack) -------------------------------------------------------------


def test_slack_ok_false_invalid_auth_is_server_rejected_key(serve: Serve) -> None:
    token = slack_token()
    api = serve(slack_like(slack_token()))
    report = diagnose(api.url("/api/auth.test"), provider="slack", key=token)
    assert report.probe is not None and report.probe.status == 200
    assert "server_rejected_key" in report.codes
    detail = report.findings[report.codes.index("server_rejected_key")].detail
    assert '"ok": false' in detail and "invalid_auth" in detail
    assert not report.ok


def test_slack_missing_scope_is_insufficient_permissions(serve: Serve) -> None:
    token = slack_token()
    api = serve(slack_like(token, error="missing_scope"))
    report = diagnose(api.url("/api/chat.postMessage"), provider="slack", key=token)
    assert "insufficient_permissions" in report.codes


def test_slack_ok_true_is_auth_ok(serve: Serve) -> None:
    token = slack_token()
    api = serve(slack_like(token))
    assert diagnose(api.url("/api/auth.test"), provider="slack", key=token).ok


# -- rate limits and other answers -------------------------------------------------------------


def test_429_is_rate_limited_with_retry_after(serve: Serve) -> None:
    from tests.doctor.apis import Reply

    api = serve(lambda req: Reply(429, {"error": {"message": "Rate limit reached"}},
                                  [("Retry-After", "20")]))
    report = diagnose(api.url("/"), key="0123456789abcdefABCDEF")
    assert "rate_limited" in report.codes
    assert "Retry-After: 20" in report.findings[report.codes.index("rate_limited")].detail


def test_a_403_with_an_exhausted_rate_limit_is_rate_limited(serve: Serve) -> None:
    from tests.doctor.apis import Reply

    api = serve(lambda req: Reply(403, {"message": "API rate limit exceeded"},
                                  [("X-RateLimit-Remaining", "0")]))
    report = diagnose(api.url("/"), key="0123456789abcdefABCDEF")
    assert "rate_limited" in report.codes
    assert "insufficient_permissions" not in report.codes


def test_a_404_says_nothing_about_the_key(serve: Serve) -> None:
    from tests.doctor.apis import Reply

    api = serve(lambda req: Reply(404, b"Not Found", [("Content-Type", "text/plain")]))
    report = diagnose(api.url("/nope"), key="0123456789abcdefABCDEF")
    assert report.codes[-1] == "probe_inconclusive"
    assert "HTTP 404" in report.findings[-1].detail and "Not Found" in report.findings[-1].detail
    assert not report.ok


def test_an_unreachable_api_is_connection_failed() -> None:
    import socket

    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        report = diagnose(f"http://127.0.0.1:{port}/", key="0123456789abcdefABCDEF", timeout=2)
    assert report.codes[-1] == "connection_failed"
    assert not report.ok


def test_a_server_echoing_the_key_is_scrubbed_from_the_report(serve: Serve) -> None:
    from tests.doctor.apis import Reply

    key = "0123456789abcdefABCDEFghij"
    api = serve(lambda req: Reply(401, {"error": f"bad key {req.header('authorization')}"}))
    report = diagnose(api.url("/"), key=key)
    assert "server_rejected_key" in report.codes
    assert "0123…ghij" in report.findings[report.codes.index("server_rejected_key")].detail
    assert_hidden(everywhere(report), key)


def test_the_key_is_not_sent_over_plain_http_to_another_host() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the doctor tried to reach {request.url}")

    report = diagnose("http://api.example.com/v1", key="0123456789abcdefABCDEF",
                      transport=httpx.MockTransport(refuse))
    assert "insecure_transport" in report.codes
    assert report.step("probe").status == "skipped"


# -- a keyturn service -------------------------------------------------------------------------


@pytest.fixture
def keyturn_api(tmp_path: Path, serve: Serve) -> Iterator[tuple[Api, KeyManager]]:
    with KeyManager(f"sqlite:///{tmp_path / 'service.db'}") as manager:
        yield serve(keyturn_service(manager, {"/admin": ("admin",)})), manager


def test_a_keyturn_key_is_accepted_by_a_keyturn_service(
    keyturn_api: tuple[Api, KeyManager],
) -> None:
    api, manager = keyturn_api
    issued = manager.create_key("probe", scopes=["read"])
    report = diagnose(api.url("/items"), provider="keyturn", key=issued.key)
    assert report.ok
    assert report.codes == ["key_source", "key_identified", "auth_ok"]


def test_a_revoked_keyturn_key_reports_keyturns_own_code(
    keyturn_api: tuple[Api, KeyManager],
) -> None:
    api, manager = keyturn_api
    issued = manager.create_key("probe")
    manager.revoke(issued.record.id)
    report = diagnose(api.url("/items"), key=issued.key)
    assert {"server_rejected_key", "key_revoked"} <= set(report.codes)
    revoked = report.findings[report.codes.index("key_revoked")]
    assert revoked.severity == "error"
    assert "revoked" in revoked.detail
    assert "keyturn outcome key_revoked" in report.findings[
        report.codes.index("server_rejected_key")].detail
    assert_hidden(everywhere(report), issued.key)


def test_a_keyturn_scope_failure_names_the_scope(keyturn_api: tuple[Api, KeyManager]) -> None:
    api, manager = keyturn_api
    issued = manager.create_key("probe", scopes=["read"])
    report = diagnose(api.url("/admin"), key=issued.key)
    assert {"insufficient_permissions", "insufficient_scope"} <= set(report.codes)
    assert "admin" in report.findings[report.codes.index("insufficient_permissions")].detail


def test_a_token_scheme_at_keyturn_is_scheme_wrong(keyturn_api: tuple[Api, KeyManager]) -> None:
    api, manager = keyturn_api
    issued = manager.create_key("probe")
    report = diagnose(api.url("/items"), key=issued.key, send_as="token", try_other_ways=True)
    assert {"rejected_as_sent", "unsupported_scheme", "scheme_wrong"} <= set(report.codes)
    assert report.working_variant == "bearer"


def test_an_unknown_key_at_keyturn_is_unknown_key(keyturn_api: tuple[Api, KeyManager]) -> None:
    from keyturn import generate_key

    api, _ = keyturn_api
    report = diagnose(api.url("/items"), key=generate_key())
    assert {"server_rejected_key", "unknown_key"} <= set(report.codes)
    assert "header_wrong" not in report.codes


@pytest.mark.parametrize(
    ("kind", "linked"),
    [
        ("https://auth.example.com/outcomes/key_revoked", True),
        ("https://auth.example.com/base/outcomes/key_revoked", True),
        ("https://auth.example.com/outcomes/key_expired", False),  # another code's page
        ("javascript:alert(1)//outcomes/key_revoked", False),
        ("urn:keyturn:outcome:key_revoked", False),  # nothing to open
    ],
)
def test_a_keyturn_problem_type_is_linked_only_when_it_is_the_codes_page(
    kind: str, linked: bool
) -> None:
    from keyturn.doctor.interpret import Answer, interpret

    body = {"type": kind, "title": "Key revoked", "status": 401, "code": "key_revoked",
            "detail": "the key was revoked"}
    answer = Answer(401, (("content-type", "application/problem+json"),),
                    json.dumps(body).encode())
    reading = interpret(answer)
    assert reading.keyturn_code == "key_revoked"
    assert reading.keyturn_page == (kind if linked else None)


# Each API's documented answer when the account behind a valid key is out of money.
OUT_OF_CREDIT = {
    "openai": ("/v1/models", 429, {"error": {
        "message": "You exceeded your current quota, please check your plan and billing "
                   "details.", "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}}),
    "anthropic": ("/v1/messages", 400, {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "Your credit balance is too low to access the Anthropic API. Please go to "
                   "Plans & Billing to upgrade or purchase credits."}}),
    "openrouter": ("/api/v1/models", 402, {"error": {
        "code": 402, "message": "Insufficient credits. Add more using "
                                "https://openrouter.ai/credits"}}),
    "deepseek": ("/models", 402, {"error": {
        "message": "Insufficient Balance", "type": "unknown_error", "param": None,
        "code": "invalid_request_error"}}),
}  # fmt: skip


@pytest.mark.parametrize("provider", OUT_OF_CREDIT)
def test_an_account_out_of_credit_is_no_rate_limit_and_no_bad_key(
    serve: Serve, provider: str
) -> None:
    """OpenAI's 429 insufficient_quota was "rate limited: wait for Retry-After", and
    OpenRouter's 402 "the answer says nothing about the key": waiting never helps, and
    the key is fine; the account needs credit."""
    path, status, body = OUT_OF_CREDIT[provider]
    api = serve(lambda seen: Reply(status, body))
    key = {
        "openai": openai_key(),
        "anthropic": anthropic_key(),
        "openrouter": "sk-or-v1-" + secrets.token_hex(32),
        "deepseek": "sk-" + secrets.token_hex(16),
    }[provider]
    report = diagnose(api.url(path), key=key, provider=provider, use_keyring=False)
    assert not report.ok
    probe = report.step("probe")
    assert [f.code for f in probe.findings] == ["usage_exceeded"], probe.findings
    assert "Retrying does not help" in probe.findings[0].fix
    assert_hidden(everywhere(report), key)
