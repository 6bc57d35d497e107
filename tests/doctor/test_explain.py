"""explain_response and the httpx hook: diagnosing a response the user already has."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import requests

from keyturn.doctor import (
    KeyRejected,
    araise_on_auth_failure,
    explain_response,
    raise_on_auth_failure,
    render_markdown,
)
from tests.doctor.apis import Api, Respond, anthropic_like, openai_like, redirect_to
from tests.doctor.conftest import anthropic_key, assert_hidden, openai_key

Serve = Callable[[Respond], Api]


def test_an_httpx_401_is_explained_from_the_request_that_caused_it(serve: Serve) -> None:
    key = openai_key()
    api = serve(openai_like(openai_key()))
    response = httpx.get(api.url("/v1/models"), headers={"Authorization": f"Bearer {key}"})
    report = explain_response(response, provider="openai")
    assert report.key_source == "the request's Authorization header"
    assert {"key_identified", "server_rejected_key"} <= set(report.codes)
    assert not report.ok
    assert_hidden(json.dumps(report.as_dict()) + render_markdown(report), key)


def test_a_requests_response_is_explained_too(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    response = requests.get(api.url("/v1/models"), headers={"Authorization": f"Bearer {key}"},
                            timeout=5)
    report = explain_response(response, provider="anthropic")
    assert {"header_wrong", "missing_required_header", "rejected_as_sent"} <= set(
        report.codes)
    assert_hidden(json.dumps(report.as_dict()), key)


def test_a_successful_response_is_auth_ok(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    response = requests.get(api.url("/v1/models"), timeout=5, headers={
        "x-api-key": key, "anthropic-version": "2023-06-01"})
    report = explain_response(response, provider="anthropic")
    assert report.ok and report.codes[-1] == "auth_ok"


def test_a_request_without_a_key_is_key_not_set(serve: Serve) -> None:
    api = serve(openai_like(openai_key()))
    report = explain_response(httpx.get(api.url("/v1/models")), provider="openai")
    assert report.codes[0] == "key_not_set"
    assert "rejected_as_sent" in report.codes  # no key: nothing is said about one
    assert "server_rejected_key" not in report.codes and "header_wrong" not in report.codes


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_a_client_that_dropped_the_key_on_a_redirect_is_told_so(
    serve: Serve, client: str
) -> None:
    key = openai_key()
    final = serve(openai_like(key))
    start = serve(redirect_to(final.url("/v1/models"), 307))
    headers = {"Authorization": f"Bearer {key}"}
    if client == "httpx":
        response = httpx.get(start.url("/v1/models"), headers=headers, follow_redirects=True)
    else:
        response = requests.get(start.url("/v1/models"), headers=headers, timeout=5)
    assert response.status_code == 401
    assert not final.received(key)  # the client itself was careful
    report = explain_response(response, provider="openai")
    assert "redirect_dropped_auth" in report.codes
    assert final.url("/v1/models") in report.findings[
        report.codes.index("redirect_dropped_auth")].detail


def test_the_hook_raises_with_the_diagnosis(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    with httpx.Client(event_hooks={"response": [raise_on_auth_failure]}) as http:
        ok = http.get(api.url("/"), headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
        assert ok.status_code == 200
        with pytest.raises(KeyRejected) as caught:
            http.get(api.url("/"), headers={"Authorization": f"Bearer {key}"})
    error = caught.value
    assert isinstance(error, httpx.HTTPStatusError)
    assert error.response.status_code == 401
    assert "header_wrong" in error.report.codes
    message = str(error)
    assert "HTTP 401" in message and "header_wrong" in message and "x-api-key" in message
    assert_hidden(message, key)


def test_the_async_hook_raises_too(serve: Serve) -> None:
    key = openai_key()
    api = serve(openai_like(openai_key()))

    async def call() -> None:
        hooks = {"response": [araise_on_auth_failure]}
        async with httpx.AsyncClient(event_hooks=hooks) as http:
            await http.get(api.url("/"), headers={"Authorization": f"Bearer {key}"})

    with pytest.raises(KeyRejected) as caught:
        asyncio.run(call())
    assert "server_rejected_key" in caught.value.report.codes
