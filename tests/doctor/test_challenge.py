"""The WWW-Authenticate parser: the RFCs' examples, real servers' answers, and fuzzing."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn.doctor import Challenge, parse_challenges


def test_rfc_9110_example_with_two_challenges_and_an_escaped_quote() -> None:
    value = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse_challenges(value) == [
        Challenge("Newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("Basic", {"realm": "simple"}),
    ]


def test_rfc_6750_invalid_token_example() -> None:
    value = ('Bearer realm="example", error="invalid_token", '
             'error_description="The access token expired"')
    [bearer] = parse_challenges(value)
    assert bearer.is_bearer
    assert bearer.param("error") == "invalid_token"
    assert bearer.param("ERROR_DESCRIPTION") == "The access token expired"


def test_a_comma_inside_a_quoted_string_does_not_split() -> None:
    [bearer] = parse_challenges('Bearer error_description="no, really", scope="a b"')
    assert bearer.params == {"error_description": "no, really", "scope": "a b"}


def test_token68_with_padding() -> None:
    assert parse_challenges("Negotiate YIIB2gYGKwYBBQUC==, Basic realm=x") == [
        Challenge("Negotiate", {}, "YIIB2gYGKwYBBQUC=="),
        Challenge("Basic", {"realm": "x"}),
    ]


def test_bare_schemes_and_scheme_case_are_kept() -> None:
    assert [c.scheme for c in parse_challenges("bearer, Basic, DPoP algs=\"ES256\"")] == [
        "bearer", "Basic", "DPoP"]


def test_whitespace_around_equals_is_allowed() -> None:
    [bearer] = parse_challenges('Bearer realm = "api" ,  error =invalid_token')
    assert bearer.params == {"realm": "api", "error": "invalid_token"}


def test_garbage_yields_what_can_be_read() -> None:
    assert parse_challenges("") == []
    assert parse_challenges(",, ,") == []
    assert [c.scheme for c in parse_challenges('Bearer realm="unterminated')] == ["Bearer"]
    assert parse_challenges('Bearer realm="unterminated')[0].params == {"realm": "unterminated"}


@settings(max_examples=300)
@given(st.text())
def test_any_text_parses_without_raising(value: str) -> None:
    challenges = parse_challenges(value)
    assert isinstance(challenges, list)
    for challenge in challenges:
        assert isinstance(challenge, Challenge) and challenge.scheme
        assert all(isinstance(k, str) and isinstance(v, str)
                   for k, v in challenge.params.items())


TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
tokens = st.text(TCHAR, min_size=1, max_size=12)
quotable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
params = st.dictionaries(tokens.map(str.lower), st.one_of(tokens, quotable), max_size=4)


def serialise(scheme: str, values: dict[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    items = ", ".join(f"{name}={quoted(value)}" for name, value in values.items())
    return f"{scheme} {items}" if items else scheme


@settings(max_examples=200)
@given(st.lists(st.tuples(tokens, params), min_size=1, max_size=3))
def test_well_formed_challenges_round_trip(challenges: list[tuple[str, dict[str, str]]]) -> None:
    header = ", ".join(serialise(scheme, values) for scheme, values in challenges)
    assert parse_challenges(header) == [Challenge(s, v) for s, v in challenges]
