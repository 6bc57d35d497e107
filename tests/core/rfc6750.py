"""An independent checker for RFC 6750 §3 challenges, used by several test modules."""

from __future__ import annotations

import re

# RFC 9110 §11 auth-param with quoted-string values restricted as RFC 6750 §3 demands.
_QCHAR = r"[\x20\x21\x23-\x5b\x5d-\x7e]"
_PARAM = rf'(realm|scope|error|error_description|error_uri)="({_QCHAR}*)"'
CHALLENGE = re.compile(rf"Bearer {_PARAM}(?:, {_PARAM})*")
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_challenge(value: str) -> dict[str, str]:
    """Parameters of a ``Bearer`` challenge; AssertionError if it breaks RFC 6750 syntax."""
    assert CHALLENGE.fullmatch(value), f"not RFC 6750 syntax: {value!r}"
    params = dict(re.findall(_PARAM, value))
    assert "realm" in params, "a challenge without realm"
    names = re.findall(r"(\w+)=", value)
    assert len(names) == len(set(names)), "a parameter appears twice"
    if "scope" in params:
        assert all(SCOPE_TOKEN.fullmatch(s) for s in params["scope"].split(" "))
    if "error" in params:
        assert params["error"] in ("invalid_request", "invalid_token", "insufficient_scope")
    return params
