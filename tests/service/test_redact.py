"""Masking keys in what the access log writes."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn._redact import Redactor
from keyturn.credentials import DEFAULT_QUERY_PARAMS
from keyturn.keys import generate_key, mask

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


# -- every form a key travels in ---------------------------------------------------------


def decoded(text: str, plus: bool = False) -> str:
    """The test's own decoder: percent (or plus) and JSON escapes, three layers deep."""
    for _ in range(3):
        text = unquote_plus(text) if plus else unquote(text)
        text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text


def percent_some(text: str, which: list[bool]) -> str:
    return "".join(f"%{ord(c):02X}" if pick else c for c, pick in zip(text, which, strict=False))


def json_escape_some(text: str, which: list[bool]) -> str:
    return "".join(f"\\u{ord(c):04x}" if pick else c for c, pick in zip(text, which, strict=False))


def forms(key: str, which: list[bool]) -> dict[str, str]:
    """The key as it may reach a log line: in a URL, a header, a JSON text, a cookie."""
    which = (which * 8)[: len(key)]
    return {
        "raw": key,
        "percent (all)": quote(key, safe=""),
        "percent (every character)": percent_some(key, [True] * len(key)),
        "percent (some)": percent_some(key, which),
        "percent, twice": quote(percent_some(key, which), safe=""),
        "plus form value": quote_plus(f"Bearer {key}"),
        "json escaped": json_escape_some(key, which),
        "json escaped, encoded": quote(json_escape_some(key, which), safe=""),
        "json dumps": json.dumps({"key": key, "url": f"/x/{key}"}),
        "basic": "Basic " + base64.b64encode(f"admin:{key}".encode()).decode(),
        "basic, no user": "Basic " + base64.b64encode(f":{key}".encode()).decode(),
        "base64url cookie": "session="
        + base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("="),
    }


def revealed(text: str, secret: str) -> bool:
    """``secret`` can be read back from ``text`` by any decoding the redactor knows of."""
    if secret in text or secret in decoded(text) or secret in decoded(text, plus=True):
        return True
    for token in text.replace("=", " ").replace(":", " ").split():
        for candidate in (token, token + "=", token + "=="):
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    if secret in decode(candidate).decode("latin-1"):
                        return True
                except ValueError:
                    pass
    return False


CONTEXTS = [
    "/files/{}",
    "/x?q={}&page=2",
    "/x?next=%2Fy%3Fq%3D{}",
    "Referer: https://app.example/cb?code={}",
    "Cookie: theme=dark; token={}",
    "X-Original-URI: /a/b?{}",
    "{}",
]


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.sampled_from(["kt_live", "kt_test", "acme_live"]),
    which=st.lists(st.booleans(), min_size=1, max_size=12),
    context=st.sampled_from(CONTEXTS),
)
def test_every_form_of_a_key_is_masked(prefix: str, which: list[bool], context: str) -> None:
    key = generate_key(prefix)
    secret = key.rpartition("_")[2]
    for name, form in forms(key, which).items():
        text = context.format(form)
        for masked in (REDACT.text(text), REDACT.uri(text)):
            assert not revealed(masked, secret), (name, text, masked)
    assert mask(key) in REDACT.text(quote(key, safe=""))


@pytest.mark.parametrize(
    "uri",
    [
        "/x?api%5Fkey=short",
        "/x?API_KEY=short",
        "/x?api_key=sh%6Frt",
        "/x?page=2&Api%5Fkey=short+and+more",
        "/x?next=%2Fcb%3Fapi_key%3Dshort",
        "/x?next=%252Fcb%253Fapi_key%253Dshort",
        "/x;api_key=short",
        "api_key=short",
    ],
)
def test_credential_parameters_are_masked_however_written(uri: str) -> None:
    text = REDACT.uri(uri)
    assert "short" not in unquote(unquote(text)), text


def test_what_holds_no_key_is_unchanged() -> None:
    for text in ("/orders/17?page=2&sort=-created", "/a%20b/c?q=%C3%A9t%C3%A9",
                 "/docs/" + "a" * 60, "Basic " + base64.b64encode(b"user:password").decode()):
        assert REDACT.uri(text) == text and REDACT.text(text) == text
