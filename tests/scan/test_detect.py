"""The detectors on file content: every catalogued shape, and nothing that is not a key."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from keyturn.keys import generate_key
from keyturn.scan import scan_bytes
from keyturn.scan.detect import find_hits
from keyturn.scan.gates import looks_patterned, plausible_secret
from keyturn.scan.shapes import SHAPES
from tests.scan import keygen
from tests.scan.keygen import SECRET_TYPES


def _secrets(text: str, config_like: bool = False) -> set[str]:
    return {h.secret for h in find_hits(text.encode(), config_like)}


@pytest.mark.parametrize(
    ("provider", "key_type"), SECRET_TYPES, ids=[f"{p.id}:{t.name}" for p, t in SECRET_TYPES]
)
def test_every_distinctive_secret_shape_is_found_and_named(provider, key_type) -> None:
    for _ in range(5):
        key = keygen.make_key(key_type)
        hits = find_hits(f'value = "{key}"\n'.encode())
        assert [h.secret for h in hits] == [key]
        assert hits[0].provider_id == provider.id
        assert hits[0].key_type.startswith(key_type.name)
        assert hits[0].code == "leaked_provider_key"
        assert hits[0].confidence == ("certain" if key_type.checksum else "high")


def test_a_file_full_of_keys_and_near_misses_yields_exactly_the_keys() -> None:
    planted = keygen.provider_keys() + keygen.keyturn_keys()
    decoys = keygen.near_misses() + keygen.identifiers()
    lines = [f'K{i} = "{p.key}"' for i, p in enumerate(planted)]
    lines += [f"D{i} = '{d}'" for i, d in enumerate(decoys)]
    lines += [f"token_{i} = '{d}'" for i, d in enumerate(decoys)]  # secret-looking names too
    import random

    random.shuffle(lines)
    assert _secrets("\n".join(lines)) == {p.key for p in planted}


@pytest.mark.parametrize("prefix", keygen.KEYTURN_PREFIXES)
def test_keyturn_keys_of_any_legal_prefix_are_certain(prefix: str) -> None:
    key = generate_key(prefix)
    (finding,) = scan_bytes(f"x = {key}\n".encode(), "a.txt")
    assert finding.code == "leaked_keyturn_key"
    assert finding.provider_id == "keyturn"
    assert finding.confidence == "certain"
    assert finding.masked == f"{prefix}_{key[len(prefix) + 1:][:4]}…{key[-4:]}"


def test_a_keyturn_key_glued_to_an_identifier_is_still_found_at_its_real_prefix() -> None:
    key = generate_key("kt_live")
    hits = find_hits(f"FOO_{key} and my_{key}".encode())
    assert [h.secret for h in hits] == [key, key]


# Indices, not the strings: they are drawn afresh in each test (and in each xdist worker).
@pytest.mark.parametrize("index", range(len(keygen.near_misses())))
def test_near_misses_are_not_findings(index: int) -> None:
    near_miss = keygen.near_misses()[index]
    for template in ('x = "{}"', "API_KEY={}", "Authorization: Bearer {}", "{}"):
        assert not find_hits(template.format(near_miss).encode(), config_like=True), template


@pytest.mark.parametrize(
    "index", range(len(keygen.IDENTIFIER_TYPES)),
    ids=[f"{p.id}:{t.name}" for p, t in keygen.IDENTIFIER_TYPES],
)
def test_identifiers_meant_to_be_seen_are_not_findings(index: int) -> None:
    identifier = keygen.identifiers()[index]
    assert not find_hits(f'publishable = "{identifier}"\nSID={identifier}\n'.encode(), True)


def test_keys_embedded_in_longer_runs_are_not_keys() -> None:
    key = keygen.github_checksummed("ghp_")
    assert not find_hits(f"x{key}".encode())
    assert not find_hits(f"{key}abc".encode())
    assert find_hits(f"https://{key}@github.com/o/r.git".encode())


GENERIC_HITS = [
    ('API_KEY = "{v}"', False),
    ("api_key: str = '{v}'", False),
    ('client = Client(api_key="{v}")', False),
    ('{{"client_secret": "{v}"}}', False),
    ('headers = {{"X-Api-Key": "{v}"}}', False),
    ('os.environ["SERVICE_TOKEN"] = "{v}"', False),
    ("$token = '{v}';", False),
    ('const authToken = `{v}`;', False),
    ("password := \"{v}\"", False),
    ("export SERVICE_TOKEN={v}", True),
    ("service_token: {v}  # prod", True),
    ("curl -H 'Authorization: Bearer {v}' https://api.example.com", False),
    ('requests.get(url, headers={{"Authorization": "Bearer {v}"}})', False),
]


@pytest.mark.parametrize(("template", "config"), GENERIC_HITS)
def test_generic_assignments_of_random_values_are_possible_secrets(template, config) -> None:
    value = "9fK2xQ7mZ1pL8vR3tY6wB4nC"
    (finding,) = scan_bytes(template.format(v=value).encode(), "conf.env" if config else "a.py",
                            config_like=config)
    assert finding.code == "possible_secret"
    assert finding.confidence == "medium"
    assert value not in finding.masked and finding.masked == "9fK2…4nC"[:4] + "…" + value[-4:]


GENERIC_MISSES = [
    'API_KEY = "your-api-key-here"',
    'API_KEY = "<your api key>"',
    "API_KEY = '${API_KEY}'",
    'token = "{{ secrets.TOKEN }}"',
    'SECRET_KEY = "changeme"',
    'api_key = "xxxxxxxxxxxxxxxxxxxxxxxx"',
    'api_key = "sk-..."',
    'token = "abcdefghijklmnopqrstuvwx1"',  # counts up: typed, not drawn
    'token = "0123456789abcdef01234567"',
    'api_key = "test-key-1234567890abcd"',
    'api_key = "example_9fK2xQ7mZ1pL8vR3"',
    "api_key = get_api_key_from_environment_2()",  # a call, in code
    "token = settings.SERVICE_TOKEN_2024_ROTATED",  # a name, in code
    'token_url = "https://example.com/oauth2/token/v1x9"',  # about a token, not one
    'API_KEY_ENV = "OPENAI_API_KEY_1"',
    'password_hash = "9fK2xQ7mZ1pL8vR3tY6wB4nC"',
    'secret = "a sentence with spaces 12345"',
    "Authorization: Bearer $TOKEN",
    "Authorization: Bearer <token>",
    'headers = {"Authorization": f"Bearer {token}"}',
    "the token 9fK2xQ7mZ1pL8vR3tY6wB4nC is not assigned",
]


@pytest.mark.parametrize("line", GENERIC_MISSES)
def test_placeholders_names_and_prose_are_not_possible_secrets(line: str) -> None:
    assert not find_hits(line.encode(), config_like=False)
    assert not find_hits(line.encode(), config_like=True)


def test_a_provider_variable_names_a_shape_the_catalogue_cannot_tell_apart() -> None:
    # 32 hex characters could be Azure, Datadog or Mailgun; DD_API_KEY says whose it is.
    value = keygen.from_pattern(__import__("re").compile("[0-9a-f]{32}"))
    (hit,) = find_hits(f"DD_API_KEY={value}\n".encode(), config_like=True)
    assert (hit.code, hit.provider_id, hit.confidence) == ("leaked_provider_key", "datadog", "high")


def test_allow_comments_silence_their_line_only() -> None:
    key = keygen.github_checksummed("ghp_")
    text = (
        f'a = "{key}"  # keyturn: allow\n'
        f'b = "{key}"  // keyturn:allow - a fixture\n'
        f'c = "{key}"\n'
    )
    (finding,) = scan_bytes(text.encode(), "x.py")
    assert (finding.line, finding.column) == (3, 6)


def test_lines_and_columns_count_characters_not_bytes() -> None:
    key = keygen.github_checksummed("ghp_")
    text = f"# é\nname = 'ü {key}'\n"
    (finding,) = scan_bytes(text.encode(), "x.py")
    assert (finding.line, finding.column) == (2, 11)


def test_fingerprints_ignore_place_and_depend_on_the_salt() -> None:
    key = generate_key()
    one = scan_bytes(f"a = '{key}'".encode(), "a.py")[0]
    two = scan_bytes(f"\n\n   b = '{key}'".encode(), "b.py")[0]
    other_salt = scan_bytes(f"a = '{key}'".encode(), "a.py", salt="abc")[0]
    assert one.fingerprint == two.fingerprint != other_salt.fingerprint
    assert key not in repr(one) and key[8:] not in one.fingerprint


def test_binary_looking_bytes_do_not_crash_the_detectors() -> None:
    key = keygen.github_checksummed("ghp_")
    data = b"\xff\xfe garbage \x80 " + key.encode() + b" \xc3\x28 api_key='\xff\xfe'"
    assert [h.secret for h in find_hits(data)] == [key]


def test_every_shape_has_a_literal_anchor_inside_its_pattern() -> None:
    for shape in SHAPES:
        assert shape.anchor and shape.key_type.pattern.pattern.replace("\\", "").startswith(
            shape.anchor.decode()
        ), shape.label


def test_the_gates_separate_drawn_from_typed() -> None:
    assert looks_patterned("0123456789ABCDEFGHIJabcdefghij")
    assert looks_patterned("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
    assert not looks_patterned(generate_key()[8:38])
    assert plausible_secret("9fK2xQ7mZ1pL8vR3tY6wB4nC")
    assert not plausible_secret("my_secret_value_2")
    assert not plausible_secret("application/x-www-form-urlencoded")


def _whsec(size: int) -> str:
    """A Standard Webhooks secret of ``size`` random bytes that Stripe's shape cannot be."""
    while True:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()
        if re.search(r"[+/=]", secret) or len(secret) != 38:
            return secret


@pytest.mark.parametrize("size", [24, 48, 64])  # 24: keyturn's and Svix's own size
def test_a_standard_webhooks_secret_is_not_called_stripes(size: int) -> None:
    """keyturn's (and Svix's) webhook secrets were reported as Stripe's, with Stripe's
    dashboard as where to rotate them."""
    secret = _whsec(size)
    (finding,) = scan_bytes(f"WEBHOOK_SECRET={secret}\n".encode(), "a.env")
    assert finding.code == "leaked_provider_key"
    assert finding.provider == "Standard Webhooks" and "Stripe" not in finding.fix
    assert secret not in finding.masked


def test_a_whsec_of_32_alphanumerics_names_both_senders() -> None:
    """Stripe's shape is also a Standard Webhooks secret of 24 bytes without + or /."""
    stripe_shaped = "whsec_" + "h7Kq2XbP9mZr4TfW8vNc3LsJ6dYg1RaE"
    (finding,) = scan_bytes(f"WEBHOOK_SECRET={stripe_shaped}\n".encode(), "a.env")
    assert finding.provider == "Stripe"
    assert "Standard Webhooks" in finding.key_type
    assert len(base64.b64decode(stripe_shaped[6:])) == 24  # a valid one of either
