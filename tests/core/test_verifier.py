"""The sans-I/O verifier and its HTTP answers, over plain values."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn.answer import PROBLEM_JSON, render
from keyturn.cache import KeyCache
from keyturn.keys import KeyDefect, display_parts, generate_key, hash_key, parse_key
from keyturn.record import KeyRecord
from keyturn.verifier import Candidate, Decision, Verifier

from .rfc6750 import parse_challenge

NOW = datetime(2026, 6, 1, tzinfo=UTC)
verifier = Verifier()


def record_for(key: str, **changes: object) -> KeyRecord:
    prefix, start, end = display_parts(key)
    base = KeyRecord(
        id="key_1",
        key_hash=hash_key(key),
        prefix=prefix,
        start=start,
        end=end,
        name="test",
        owner="ada",
        scopes=frozenset({"read", "billing:*"}),
        metadata={},
        created_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=1),
    )
    return base.evolve(**changes)


def check(key: str, record: KeyRecord | None, scopes: tuple[str, ...] = ()) -> Decision:
    found = verifier.inspect([("authorization", f"Bearer {key}")])
    assert isinstance(found, Candidate)
    return verifier.decide(found, record, NOW, scopes)


def test_garbage_never_reaches_a_lookup() -> None:
    key = generate_key()
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    for bad, code in [
        (typo, "checksum_mismatch"),
        (key[:-3], "malformed_key"),
        ("sk-proj-" + "a" * 40, "malformed_key"),
        ("ghp_" + "a" * 36, "malformed_key"),
        ("AIza" + "b" * 35, "malformed_key"),
    ]:
        found = verifier.inspect([("x-api-key", bad)])
        assert isinstance(found, Decision), bad
        assert found.code == code


def _near_keys() -> st.SearchStrategy[str]:
    """Strings a key's check must tell apart: keys of several prefixes, with a character
    changed, added or removed anywhere (a letter, a digit, an underscore, a non-ASCII
    letter, a space), or cut."""
    prefixes = st.sampled_from(["kt_live", "kt_test", "kt", "acme_live", "x"])
    change = st.sampled_from(["a", "Z", "7", "_", "é", "٣", " ", "-", ""])
    return st.builds(
        lambda key, at, new, cut: (key[:at] + new + key[at + 1 :])[: len(key) + 1 - cut],
        prefixes.map(generate_key),
        st.integers(0, 50),
        change,
        st.integers(0, 3),
    )


@given(_near_keys())
def test_the_fast_shape_check_agrees_with_the_full_parser(value: str) -> None:
    # ``well_formed`` (a regex and the CRC) is what the hot path asks; the parser
    # is what explains a refusal: one key, one answer.
    narrow = Verifier(["kt_live", "acme_live"])
    parsed = parse_key(value, narrow.prefixes)
    assert narrow.well_formed(value) == (not isinstance(parsed, KeyDefect))


def test_an_accepting_decision_is_the_one_its_fields_make() -> None:
    key = generate_key()
    record = record_for(key)
    accepted = verifier.accept(record, ("read",))
    assert accepted == Decision(verifier.reject("valid", "").outcome, "", "", record, ("read",))
    assert accepted.ok and accepted.quota is None and accepted.unmet == ""
    KeyCache().put(record.key_hash, record)
    kept = verifier.accept(record, ("read",))
    assert verifier.accept(record, ("read",)) is kept  # kept with the record, per scope tuple


class _Probe:
    """Held in a record's metadata: its weak reference tells when the record is freed."""


def test_a_record_nothing_keeps_goes_with_its_decision() -> None:
    """A record read on a cache miss with no cache to keep it is freed with the decision
    made of it, not left to the garbage collector (which a busy verifier would run every
    few hundred requests to walk such records)."""
    probe = _Probe()
    held = weakref.ref(probe)
    record = record_for(generate_key(), metadata={"probe": probe})
    del probe
    gc.disable()  # only reference counts may free it
    try:
        accepted = verifier.accept(record, ("read",))
        assert accepted is not None and accepted.key is record
        del record, accepted
        assert held() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("value", "provider"),
    [
        ("sk-proj-" + "a" * 40, "OpenAI"),
        ("ghp_" + "a" * 36, "GitHub"),
        ("AIza" + "b" * 35, "Google"),
    ],
)
def test_other_providers_keys_are_named(value: str, provider: str) -> None:
    found = verifier.inspect([("x-api-key", value)])
    assert isinstance(found, Decision)
    assert "not a key of this service" in found.detail
    assert provider in found.detail


def test_decision_order_reveals_state_only_for_a_matching_hash() -> None:
    key = generate_key()
    assert check(key, None).code == "unknown_key"
    past = NOW - timedelta(seconds=1)
    assert check(key, record_for(key)).code == "valid"
    # Revoked wins over everything; then disabled; then rotation; then expiry; then scope.
    everything = record_for(key, revoked_at=past, disabled=True, grace_until=past, expires_at=past)
    assert check(key, everything).code == "key_revoked"
    assert check(key, record_for(key, disabled=True, expires_at=past)).code == "key_disabled"
    assert check(key, record_for(key, grace_until=past, expires_at=past)).code == "key_rotated"
    assert check(key, record_for(key, expires_at=past)).code == "key_expired"
    assert check(key, record_for(key, expires_at=None)).code == "valid"
    within_grace = record_for(key, grace_until=NOW + timedelta(hours=1))
    assert check(key, within_grace).code == "valid"


@pytest.mark.parametrize(
    ("held", "required", "code"),
    [
        ({"read"}, ("read",), "valid"),
        ({"read"}, ("read", "write"), "insufficient_scope"),
        ({"*"}, ("anything", "keys:write"), "valid"),
        ({"billing:*"}, ("billing:read",), "valid"),
        ({"billing:*"}, ("keys:read",), "insufficient_scope"),
        (set(), (), "valid"),
    ],
)
def test_scopes(held: set[str], required: tuple[str, ...], code: str) -> None:
    key = generate_key()
    decision = check(key, record_for(key, scopes=frozenset(held)), required)
    assert decision.code == code
    if code == "insufficient_scope":
        assert decision.key is not None  # authenticated: the caller is known
        assert "write" in decision.detail or "keys:read" in decision.detail


def test_every_rejection_renders_an_rfc_answer_without_the_key() -> None:
    key = generate_key()
    past = NOW - timedelta(seconds=1)
    decisions = [
        verifier.inspect([]),
        verifier.inspect([("authorization", f"Token {key}")]),
        verifier.inspect([("authorization", f'Bearer "{key}"')]),
        verifier.inspect([("authorization", f"Bearer {key}"), ("x-api-key", generate_key())]),
        verifier.inspect([], f"api_key={key}"),
        verifier.inspect([("x-api-key", key[:-2])]),
        verifier.inspect([("x-api-key", key[:-1] + ("0" if key[-1] != "0" else "1"))]),
        check(key, None),
        check(key, record_for(key, expires_at=past)),
        check(key, record_for(key, revoked_at=past)),
        check(key, record_for(key, disabled=True)),
        check(key, record_for(key, grace_until=past)),
        check(key, record_for(key), ("admin", "write")),
    ]
    seen = set()
    for decision in decisions:
        assert isinstance(decision, Decision)
        answer = render(decision, realm='my "api"')
        seen.add(decision.code)
        assert answer.status == decision.outcome.status
        assert answer.header("content-type") == PROBLEM_JSON
        params = parse_challenge(answer.header("www-authenticate") or "")
        assert params["realm"] == "my 'api'"
        if decision.code == "missing_credentials":
            assert set(params) == {"realm"}
        elif decision.outcome.error:
            assert params["error"] == decision.outcome.error
            assert params["error_description"]
        if decision.code == "insufficient_scope":
            assert answer.status == 403
            assert params["scope"] == "admin write"
        body = answer.body
        assert {"type", "title", "status", "detail", "code", "hint"} <= set(body)
        assert body["status"] == answer.status and body["code"] == decision.code
        text = answer.body_bytes().decode() + str(answer.headers)
        assert key not in text and key[:-2] not in text
    assert len(seen) == 13


def test_401s_are_never_403s_and_400s_are_invalid_request() -> None:
    from keyturn.outcomes import CATALOGUE

    for outcome in CATALOGUE.values():
        if outcome.kind != "outcome" or outcome.code == "valid":
            continue
        if outcome.error == "invalid_token" or outcome.code in (
            "missing_credentials",
            "unsupported_scheme",
        ):
            assert outcome.status == 401
        if outcome.error == "invalid_request":
            assert outcome.status == 400
        if outcome.error == "insufficient_scope":
            assert outcome.status == 403


def test_valid_answer_shows_identity_not_secrets() -> None:
    key = generate_key()
    answer = render(check(key, record_for(key)))
    assert answer.status == 200
    assert answer.body["key"]["id"] == "key_1"
    assert "key_hash" not in answer.body["key"]
    assert key not in answer.body_bytes().decode()


def test_a_records_usable_until_is_the_earliest_refusal_of_the_state_table() -> None:
    # ``usable_until`` reads the table's fields in one loop; each state's ``refused`` is
    # what ``refusal`` asks. Every combination of the four reasons agrees.
    from itertools import product

    from keyturn import _states

    key = generate_key()
    times = [None, NOW - timedelta(hours=1), NOW + timedelta(hours=1)]
    for revoked, disabled, grace, expires in product(
        [None, NOW - timedelta(days=2)], [False, True], times, times
    ):
        record = record_for(
            key, revoked_at=revoked, disabled=disabled, grace_until=grace, expires_at=expires
        )
        earliest = min(state.refused(record) for state in _states.STATES)
        assert record.usable_until == earliest
        state = _states.refusal(record, NOW.timestamp())
        assert (state is None) == (NOW.timestamp() < earliest)
