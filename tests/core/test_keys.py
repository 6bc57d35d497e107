"""The key format, checked against an independent reading of docs/key-format.md."""

from __future__ import annotations

import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn.keys import (
    BODY_LENGTH,
    KeyDefect,
    KeyProblem,
    ParsedKey,
    generate_key,
    hash_key,
    key_hasher,
    mask,
    parse_key,
    validate_prefix,
)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def spec_checksum(text: str) -> str:
    """The spec, written again without looking at the implementation."""
    value = zlib.crc32(text.encode("utf-8"))
    digits = ""
    while value:
        value, rem = divmod(value, 62)
        digits = ALPHABET[rem] + digits
    return digits.rjust(6, "0")


def test_generated_key_follows_the_spec() -> None:
    key = generate_key()
    match = re.fullmatch(r"(kt_live)_([0-9A-Za-z]{30})([0-9A-Za-z]{6})", key)
    assert match, key
    prefix, body, check = match.groups()
    assert spec_checksum(f"{prefix}_{body}") == check
    assert BODY_LENGTH * 5.95 >= 160  # 30 base62 characters carry at least 160 bits


def test_known_vector() -> None:
    # A fixed example that third-party implementations can check themselves against.
    head = "kt_live_" + "A" * 30
    assert spec_checksum(head) == parse_key(head + spec_checksum(head)).checksum  # type: ignore[union-attr]


def test_keys_are_unique_and_use_the_whole_alphabet() -> None:
    keys = {generate_key("kt_test") for _ in range(300)}
    assert len(keys) == 300
    used = set("".join(k[8:38] for k in keys))
    assert used == set(ALPHABET)


def test_every_position_of_the_body_draws_from_the_whole_alphabet_evenly() -> None:
    """The body is one uniform number written in base62: each character, the first (most
    significant) and the last included, is uniform over the 62 (chi-square, 61 degrees of
    freedom: about 61 expected, 140 about once in ten million draws; a biased position
    scores in the hundreds)."""
    bodies = [generate_key("kt_test")[8:38] for _ in range(6200)]
    for position in (0, 1, 15, 29):
        counts = {c: 0 for c in ALPHABET}
        for body in bodies:
            counts[body[position]] += 1
        expected = len(bodies) / 62
        chi2 = sum((n - expected) ** 2 / expected for n in counts.values())
        assert chi2 < 140, (position, chi2)


def test_parse_returns_parts() -> None:
    key = generate_key("acme_test")
    parsed = parse_key(key)
    assert isinstance(parsed, ParsedKey)
    assert parsed.prefix == "acme_test"
    assert key == f"{parsed.prefix}_{parsed.body}{parsed.checksum}"


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda k: k[:-1], KeyProblem.WRONG_LENGTH),
        (lambda k: k + k[-5:], KeyProblem.WRONG_LENGTH),
        (lambda k: k[:12] + "!" + k[13:], KeyProblem.ILLEGAL_CHARACTER),
        (lambda k: k[:12] + ("a" if k[12] != "a" else "b") + k[13:], KeyProblem.CHECKSUM_MISMATCH),
        (lambda k: "kt_prod" + k[7:], KeyProblem.WRONG_PREFIX),
        (lambda k: k.replace("kt_live_", ""), KeyProblem.WRONG_PREFIX),
        (lambda k: "KT_LIVE" + k[7:], KeyProblem.WRONG_PREFIX),
    ],
)
def test_parse_names_the_exact_problem(mutate, problem) -> None:  # type: ignore[no-untyped-def]
    key = generate_key()
    result = parse_key(mutate(key), frozenset({"kt_live", "kt_test"}))
    assert isinstance(result, KeyDefect)
    assert result.problem is problem
    assert key not in result.detail


def test_wrong_prefix_detail_lists_accepted_prefixes() -> None:
    result = parse_key(generate_key("kt_test"), frozenset({"kt_live"}))
    assert isinstance(result, KeyDefect)
    assert "'kt_live_'" in result.detail and "kt_test" in result.detail


@given(st.text(max_size=80))
def test_parse_never_raises(text: str) -> None:
    result = parse_key(text, frozenset({"kt_live"}))
    assert isinstance(result, ParsedKey | KeyDefect)


@pytest.mark.parametrize("prefix", ["", "Kt", "a" * 33, "kt-live", "kt live"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="a-z, 0-9"):
        generate_key(prefix)
    with pytest.raises(ValueError):
        validate_prefix(prefix)


def test_hash_is_sha256_or_hmac_with_pepper() -> None:
    import hashlib
    import hmac

    key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    peppered = hash_key(key, b"pepper")
    assert peppered == hmac.new(b"pepper", key.encode(), hashlib.sha256).hexdigest()
    assert peppered != hash_key(key, b"other")


@given(key=st.text(max_size=200), pepper=st.none() | st.binary(max_size=200))
def test_the_hot_path_hasher_is_exactly_sha256_or_hmac(key: str, pepper: bytes | None) -> None:
    """``key_hasher`` precomputes HMAC's padded-key states; it must not change one bit
    (peppers longer than the block are hashed first, as RFC 2104 says)."""
    import hashlib
    import hmac

    expected = (
        hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        if pepper is None
        else hmac.new(pepper, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    )
    try:
        key.encode()
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            key_hasher(pepper)(key)
        return
    assert key_hasher(pepper)(key) == hash_key(key, pepper) == expected


def test_mask_shows_prefix_and_four_characters_each_side() -> None:
    key = generate_key()
    masked = mask(key)
    assert masked == f"kt_live_{key[8:12]}…{key[-4:]}"
    assert key not in masked


@pytest.mark.parametrize("short", ["abc", "kt_live_short", "x" * 15])
def test_mask_of_short_strings_hides_everything_secret(short: str) -> None:
    assert mask(short) in ("…", "kt_live_…")
