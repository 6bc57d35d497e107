"""What a scan reports on weaker evidence, and what it still refuses.

A provider's exact shape is reported even when its characters count up (``low``: a test key,
or a real one somebody typed); a password in a connection string is somebody's password
even when it is a word (``low``: a weak one); the user half of a two-part key is reported
where a peer reports it (``low``: its secret is usually beside it). Stand-ins (``xxxx``,
``EXAMPLE``, ``<...>``, ``${VAR}``, the word ``password``) and near-misses (a character
off, a companion missing) are still not findings. Every value is drawn here.
"""

from __future__ import annotations

import secrets

import pytest

from keyturn.scan.detect import find_hits
from tests.scan import keygen

ALNUM = "[A-Za-z0-9]"


def _hits(text: str, config_like: bool = True) -> list[tuple[str, str, str]]:
    return [(h.secret, h.confidence, h.key_type) for h in find_hits(text.encode(), config_like)]


def _mixed(length: int) -> str:
    """A random key-like value holding a digit, a lower- and an upper-case letter (and so
    no hexadecimal run another provider's shape would take)."""
    return keygen.draw(f"{ALNUM}{{{length - 3}}}") + "7kQ"


@pytest.mark.parametrize("index", range(len(keygen.typed_keys())))
def test_a_typed_key_of_an_exact_shape_is_reported_low(index: int) -> None:
    key = keygen.typed_keys()[index]
    for template in ('x = "{}"', "API_KEY={}", "{}"):
        ((secret, confidence, kind),) = _hits(template.format(key))
        assert (secret, confidence) == (key, "low")
        assert "looks hand-typed" in kind


def test_a_random_key_of_the_same_shape_keeps_its_confidence() -> None:
    key = "sk-ant-api03-" + keygen.draw("[A-Za-z0-9_-]{93}") + "AA"
    assert _hits(f'ANTHROPIC_API_KEY = "{key}"') == [(key, "high", "API key")]


def test_a_twilio_api_key_sid_is_reported_low_where_twilio_is_named() -> None:
    sid = "SK" + secrets.token_hex(16)
    ((secret, confidence, kind),) = _hits(f'{{"twilio_api_key": "{sid}"}}\n')
    assert (secret, confidence) == (sid, "low")
    assert "identifier" in kind
    assert not _hits(f'{{"api_key_sid": "{sid}"}}\n')  # no Twilio named: an identifier only


def test_a_twilio_api_key_secret_counts_beside_its_sid_only() -> None:
    sid, secret = "SK" + _mixed(32), _mixed(32)
    text = f"twilio sid - '{sid}'\ntwilio secret - '{secret}'\n"
    assert secret in {s for s, _, _ in _hits(text, config_like=False)}
    alone = f"twilio secret - '{secret}'\n"
    assert not _hits(alone, config_like=False)
    glued = f"twilio sid - 'SK_{_mixed(30)}'\ntwilio secret - '{secret}'\n"
    assert not _hits(glued, config_like=False)


def test_a_github_oauth_secret_counts_beside_a_client_id_of_its_length() -> None:
    client_id, client_secret = _mixed(20), secrets.token_hex(20)
    found = _hits(f"github = '{client_id}', '{client_secret}'\n", config_like=False)
    assert client_secret in {s for s, _, _ in found}
    longer = f"github = '{_mixed(21)}', '{client_secret}'\n"
    assert not _hits(longer, config_like=False)


def test_a_github_token_longer_than_the_checksummed_form_is_reported() -> None:
    long_token = "ghs_" + _mixed(120)
    ((secret, confidence, _kind),) = _hits(f"GH_TOKEN={long_token}\n")
    assert (secret, confidence) == (long_token, "medium")
    # One character more than the 40 of a checksummed token: that token with a typo.
    typo = keygen.github_checksummed("ghp_") + "7"
    assert not _hits(f"GH_TOKEN={typo}\n")


def test_a_postman_key_in_trufflehogs_wider_form_is_reported() -> None:
    key = "PMAK-" + _mixed(59)
    ((secret, confidence, _kind),) = _hits(f"postman_api_key: {key}\n")
    assert (secret, confidence) == (key, "medium")
    broken = key[:30] + "?" + key[31:]
    assert not _hits(f"postman_api_key: {broken}\n")


@pytest.mark.parametrize("line, password", [
    ('"Server=db.internal;Initial Catalog=app;User ID=sa;Password=P@ssw0rd!;"', "P@ssw0rd!"),
    ("jdbc:mysql://db.internal:3306/app;user=app;password=Summer2024...", "Summer2024"),
    ("url = 'postgres://postgres:postgres@<your-host>:5432/app'", "postgres"),
    ("ADMIN_URL=https://admin:1234@intranet.example.com/", "1234"),
])
def test_a_weak_password_in_a_connection_string_is_reported_low(line: str,
                                                               password: str) -> None:
    found = _hits(line + "\n")
    assert (password, "low") in {(s, c) for s, c, _ in found}, found


def test_a_random_password_in_a_connection_string_is_medium() -> None:
    password = _mixed(24)
    found = _hits(f'"Data Source=db;User ID=app;Password={password};"\n')
    assert [(s, c) for s, c, _ in found] == [(password, "medium")]


@pytest.mark.parametrize("line", [
    '"Server=db;User ID=app;Password=${DB_PASSWORD};"',
    '"Server=db;User ID=app;Password=<password>;"',
    '"Server=db;User ID=app;Password=********;"',
    "DATABASE_URL=postgres://username:password@localhost:5432/app",
    "DATABASE_URL=postgres://app:%(password)s@localhost/app",
    '"password=Summer2024"',  # not in a connection string: a generic value, and too short
])
def test_password_stand_ins_and_bare_password_fields_are_not_findings(line: str) -> None:
    assert not _hits(line + "\n"), line


def test_an_appsync_api_key_counts_beside_its_endpoint_only() -> None:
    key = "da2-" + keygen.draw("[a-z0-9]{24}") + "7k"
    endpoint = f"https://{keygen.draw('[a-z0-9]{26}')}.appsync-api.eu-west-1.amazonaws.com/graphql"
    found = _hits(f'const url = "{endpoint}";\nconst key = "{key}";\n', config_like=False)
    assert [(s, c) for s, c, _ in found] == [(key, "high")]
    assert not _hits(f'const key = "{key}";\n', config_like=False)
    short = "https://abc.appsync-api.eu-west-1.amazonaws.com/graphql"  # not an endpoint's id
    assert not _hits(f'const url = "{short}";\nconst key = "{key}";\n', config_like=False)


ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def _spelling_the_alphabet(pattern: str, length: int) -> str:
    """A random draw of ``pattern`` with the alphabet typed into its middle: too few of its
    neighbours count up for the value to look typed by that measure alone."""
    head = keygen.draw(f"{pattern}{{{(length - 26) // 2}}}")
    return head + ALPHABET + keygen.draw(f"{pattern}{{{length - 26 - len(head)}}}")


def test_an_appsync_key_spelling_the_alphabet_is_reported_low_beside_its_endpoint() -> None:
    endpoint = f"https://{keygen.draw('[a-z0-9]{26}')}.appsync-api.eu-west-1.amazonaws.com"
    key = "da2-" + ALPHABET
    ((secret, confidence, kind),) = _hits(f'url = "{endpoint}"\nkey = "{key}"\n')
    assert (secret, confidence) == (key, "low")
    assert "looks hand-typed" in kind
    assert not _hits(f'key = "{key}"\n')  # no endpoint beside it: nothing says AppSync


@pytest.mark.parametrize("template, prefix, pattern, length, suffix", [
    ('ANTHROPIC_API_KEY = "{}"', "sk-ant-api03-", "[A-Za-z0-9_-]", 93, "AA"),  # catalogue
    ("GH_TOKEN={}", "ghs_", ALNUM, 120, ""),  # a rule, past the 100 characters judged by
])                                            # their neighbours
def test_a_provider_key_spelling_the_alphabet_is_typed_at_any_length(
        template: str, prefix: str, pattern: str, length: int, suffix: str) -> None:
    key = prefix + _spelling_the_alphabet(pattern, length) + suffix
    ((secret, confidence, kind),) = _hits(template.format(key))
    assert (secret, confidence) == (key, "low")
    assert "looks hand-typed" in kind


def test_a_generic_value_spelling_the_alphabet_is_no_finding() -> None:
    value = _spelling_the_alphabet(ALNUM, 64)
    assert not _hits(f'API_SECRET = "{value}"\n')
    assert _hits(f'API_SECRET = "{_mixed(64)}"\n')  # the same length, drawn: a finding
