"""Reading a key from headers and query: every mistake gets its own code and hint."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn import KeyCache, KeyManager
from keyturn.credentials import CredentialReader, Presented, Rejection
from keyturn.keys import checksum
from keyturn.outcomes import CATALOGUE
from keyturn.verifier import Candidate, Decision

# Fixed keys: test ids must be the same in every pytest-xdist worker.
KEY = "kt_live_" + "Q7fz" * 7 + "ab" + checksum("kt_live_" + "Q7fz" * 7 + "ab")
OTHER = "kt_live_" + "m3Xk" * 7 + "cd" + checksum("kt_live_" + "m3Xk" * 7 + "cd")
reader = CredentialReader()
Triage = Callable[[list[tuple[bytes, bytes]], bytes], Decision | Candidate | None]


def read(*headers: tuple[str, str], query: str = "") -> Presented | Rejection:
    return reader.read(list(headers), query)


@pytest.mark.parametrize(
    "headers",
    [
        [("Authorization", f"Bearer {KEY}")],
        [("authorization", f"bearer {KEY}")],
        [("AUTHORIZATION", f"BEARER   {KEY}")],
        [("x-api-key", KEY)],
        [("X-API-Key", f"  {KEY} ")],
        [("Authorization", f"Bearer {KEY}"), ("x-api-key", KEY)],
    ],
)
def test_accepted_forms(headers: list[tuple[str, str]]) -> None:
    found = read(*headers)
    assert isinstance(found, Presented)
    assert found.key == KEY


@pytest.mark.parametrize(
    ("headers", "query", "code", "hint_words"),
    [
        ([], "", "missing_credentials", "Bearer"),
        ([("Authorization", f"Token {KEY}")], "", "unsupported_scheme", "Bearer"),
        ([("Authorization", f"Basic {KEY}")], "", "unsupported_scheme", "Bearer"),
        ([("Authorization", f"Api-Key {KEY}")], "", "unsupported_scheme", "x-api-key"),
        ([("Authorization", KEY)], "", "unsupported_scheme", "Bearer "),
        ([("Authorization", "Bearer")], "", "malformed_credentials", "empty"),
        ([("Authorization", "Bearer   ")], "", "malformed_credentials", "empty"),
        ([("Authorization", "")], "", "malformed_credentials", "empty"),
        ([("Authorization", f'Bearer "{KEY}"')], "", "malformed_credentials", "quotes"),
        ([("Authorization", f"Bearer '{KEY}'")], "", "malformed_credentials", "quotes"),
        ([("Authorization", f"Bearer Bearer {KEY}")], "", "malformed_credentials", "bare key"),
        ([("Authorization", f"Bearer {KEY}\n")], "", "malformed_credentials", "newline"),
        (
            [("Authorization", f"Bearer {KEY[:10]} {KEY[10:]}")],
            "",
            "malformed_credentials",
            "strip",
        ),
        ([("Authorization", f"Bearer {KEY}é")], "", "malformed_credentials", "copy it again"),
        ([("x-api-key", f"Bearer {KEY}")], "", "malformed_credentials", "without 'Bearer '"),
        ([("x-api-key", "")], "", "malformed_credentials", "empty"),
        ([("x-api-key", f'"{KEY}"')], "", "malformed_credentials", "quotes"),
        (
            [("Authorization", f"Bearer {KEY}"), ("Authorization", f"Bearer {KEY}")],
            "",
            "conflicting_credentials",
            "single",
        ),
        (
            [("Authorization", f"Bearer {KEY}"), ("x-api-key", OTHER)],
            "",
            "conflicting_credentials",
            "one key",
        ),
        ([("x-api-key", KEY), ("x-api-key", OTHER)], "", "conflicting_credentials", "once"),
        ([], f"api_key={KEY}", "credentials_in_query", "rotate"),
        (
            [("Authorization", f"Bearer {KEY}")],
            f"page=2&apikey={KEY}",
            "credentials_in_query",
            "logs",
        ),
    ],
)
def test_each_mistake_has_its_code_and_hint(
    headers: list[tuple[str, str]], query: str, code: str, hint_words: str
) -> None:
    found = read(*headers, query=query)
    assert isinstance(found, Rejection)
    assert found.code == code
    assert hint_words in found.hint or hint_words in found.detail
    assert KEY not in found.detail + found.hint
    assert OTHER not in found.detail + found.hint


def test_query_keys_when_the_deployment_allows_them() -> None:
    lenient = CredentialReader(allow_query=True)
    found = lenient.read([], f"api_key={KEY}")
    assert found == Presented(KEY, "query:api_key")
    clash = lenient.read([("x-api-key", OTHER)], f"api_key={KEY}")
    assert isinstance(clash, Rejection) and clash.code == "conflicting_credentials"


def test_unrelated_query_parameters_are_ignored() -> None:
    found = read(("Authorization", f"Bearer {KEY}"), query="keyword=x&monkey=1")
    assert isinstance(found, Presented)


def test_configurable_api_key_header_names() -> None:
    custom = CredentialReader(api_key_headers=("X-Acme-Key",))
    assert custom.read([("x-acme-key", KEY)]) == Presented(KEY, "x-acme-key")
    ignored = custom.read([("x-api-key", KEY)])
    assert isinstance(ignored, Rejection) and ignored.code == "missing_credentials"
    assert "x-acme-key" in ignored.detail


def test_bytes_headers_as_asgi_gives_them() -> None:
    assert reader.read([(b"authorization", f"Bearer {KEY}".encode())]) == Presented(
        KEY, "authorization"
    )


def test_repr_masks_the_key() -> None:
    assert KEY not in repr(Presented(KEY, "authorization"))


header_names = st.sampled_from(
    ["authorization", "Authorization", "x-api-key", "X-Api-Key", "host", "cookie", "x-other",
     "x_api_key", "X_Api_Key"]  # the underscore spelling some servers read as x-api-key
)  # fmt: skip
header_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["Bearer", "bearer ", "Token x", "Bearer Bearer", '"x"', KEY]).flatmap(
        lambda v: st.just(v) | st.builds(lambda s: v + s, st.text(max_size=8))
    ),
    st.builds(lambda s: f"Bearer {s}", st.text(max_size=50)),
)


@given(
    st.lists(st.tuples(header_names, header_values), max_size=6),
    st.text(max_size=40) | st.just(f"api_key={KEY}"),
)
def test_arbitrary_headers_only_give_catalogued_outcomes(
    headers: list[tuple[str, str]], query: str
) -> None:
    found = reader.read(headers, query)
    if isinstance(found, Rejection):
        assert found.code in CATALOGUE
        assert found.detail and found.hint
    else:
        assert found.key


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triage]:
    """``KeyManager.verify_asgi`` in its triage form, with no cache: a key it reads the
    plain way comes back as the ``Candidate`` to look up (no store is read)."""
    folder = tmp_path_factory.mktemp("triage")
    manager = KeyManager(f"sqlite:///{folder / 'keys.db'}", cache=KeyCache(maxsize=0))
    yield lambda headers, query: manager.verify_asgi(headers, query, (), None, None, True)
    manager.close()


@given(
    st.lists(st.tuples(header_names, header_values | st.just(f"Bearer {KEY}")), max_size=5),
    st.text(max_size=30),
)
def test_the_asgi_fast_path_agrees_with_the_full_reader(
    triage: Triage, headers: list[tuple[str, str]], query: str
) -> None:
    raw = [(n.lower().encode(), v.encode("utf-8")) for n, v in headers]
    latin = [(n, v.decode("latin-1")) for n, v in raw]
    found = triage(raw, query.encode())
    if isinstance(found, Candidate):
        # When the fast path reads a key, the full reader finds the same key, in the same
        # header; anything else the fast path leaves to it (``None``).
        assert reader.read(latin, query) == found.presented
    else:
        assert found is None


@given(
    st.lists(st.tuples(header_names, header_values), max_size=6),
    st.text(max_size=40) | st.just(f"api_key={KEY}"),
)
def test_the_verifier_only_answers_with_catalogued_outcomes(
    headers: list[tuple[str, str]], query: str
) -> None:
    from keyturn.answer import render
    from keyturn.verifier import Candidate, Verifier

    verifier = Verifier()
    found = verifier.inspect(headers, query)
    if isinstance(found, Candidate):
        found = verifier.decide(found, None)  # a well-formed key this deployment never issued
        assert found.code == "unknown_key"
    assert found.code in CATALOGUE
    answer = render(found)
    assert answer.status == CATALOGUE[found.code].status
    assert KEY not in answer.body_bytes().decode() + str(answer.headers)
