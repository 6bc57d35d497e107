"""Masking keys in what the access log writes."""

from __future__ import annotations

from keyturn.credentials import DEFAULT_QUERY_PARAMS
from keyturn.keys import generate_key, mask
from keyturn.service.redact import Redactor

REDACT = Redactor(DEFAULT_QUERY_PARAMS)


def test_key_shaped_tokens_are_masked_anywhere() -> None:
    key = generate_key()
    other = generate_key("acme_live")
    text = REDACT.uri(f"/files/{key}/x?ref={other}")
    assert key not in text and other not in text
    assert mask(key) in text and mask(other) in text


def test_credential_parameters_are_masked_whatever_their_value() -> None:
    for value in ("short", "sk-proj-1234567890abcdef", "a%20b"):
        text = REDACT.uri(f"/x?page=2&api_key={value}&Key={value}&token=ok")
        assert f"={value}" not in text.replace("token=ok", "")
        assert "page=2" in text and "token=ok" in text


def test_plain_paths_are_unchanged() -> None:
    assert REDACT.uri("/orders/17?page=2") == "/orders/17?page=2"
    assert Redactor(()).uri("/a?api_key=x") == "/a?api_key=x"
