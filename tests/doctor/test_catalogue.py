"""The data behind the doctor: provider catalogue and finding codes stay consistent."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn._providers import (
    PROVIDERS,
    KeyType,
    Provider,
    by_id,
    entries,
    for_host,
    identify,
    identify_type,
)
from keyturn.doctor.permissions import FINDINGS as DENIALS
from keyturn.doctor.target import provider_at, provider_named
from keyturn.outcomes import CATALOGUE

DOCTOR_SRC = Path(__file__).parents[2] / "src" / "keyturn" / "doctor"
TESTS = Path(__file__).parent


def _doctor_block() -> list[str]:
    """The codes in the catalogue's doctor block (other faces keep their own blocks)."""
    text = resources.files("keyturn").joinpath("outcomes.toml").read_text("utf-8")
    block = text.split("# Doctor findings", 1)[1]
    block = re.split(r"\n# -{20,}\n# (?!Doctor)", block, maxsplit=1)[0]
    return re.findall(r"^\[([a-z_]+)\]$", block, flags=re.MULTILINE)


FINDINGS = sorted(_doctor_block())
REQUIRED = [
    "key_not_set", "key_placeholder", "key_whitespace", "key_quoted", "dotenv_shadowed",
    "netrc_override", "key_malformed", "key_provider_mismatch", "key_wrong_type",
    "scheme_lowercase", "scheme_wrong", "header_wrong", "missing_required_header",
    "key_expired_by_age", "key_expiring_soon", "token_expired", "token_not_yet_valid",
    "redirect_dropped_auth", "insecure_transport", "proxy_in_env", "server_rejected_key",
    "insufficient_permissions", "rate_limited", "auth_ok",
]


def test_every_finding_the_issue_asks_for_is_in_the_catalogue() -> None:
    for code in REQUIRED:
        entry = CATALOGUE[code]
        assert entry.kind == "finding"
        assert entry.severity in ("error", "warning", "info")
        assert entry.title and entry.explanation and entry.fix
    assert CATALOGUE["scheme_lowercase"].severity == "warning"
    assert CATALOGUE["auth_ok"].severity == "info"


def test_every_code_the_doctor_emits_is_catalogued_and_every_finding_is_emitted() -> None:
    source = "\n".join(p.read_text() for p in DOCTOR_SRC.glob("*.py"))
    emitted = set(re.findall(r'finding\(\s*"([a-z_]+)"', source))
    emitted |= set(re.findall(r'code = "([a-z_]+)"', source))
    emitted |= set(DENIALS.values())  # the finding of each kind of "valid key, but"
    assert emitted == set(FINDINGS)
    for code in FINDINGS:
        assert CATALOGUE[code].kind == "finding"


@pytest.mark.parametrize("code", FINDINGS)
def test_every_finding_code_is_asserted_by_a_test(code: str) -> None:
    tests = "\n".join(
        p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name
    )
    assert f'"{code}"' in tests, f"no test asserts {code}"


def test_the_catalogue_lists_at_least_60_apis_each_citing_its_source() -> None:
    assert len(PROVIDERS) >= 60
    text = resources.files("keyturn").joinpath("providers.toml").read_text("utf-8")
    blocks = text.split("[[provider]]")[1:]
    assert len(blocks) == len(PROVIDERS)
    for block in blocks:
        head = block.split("[[provider.key_type]]")[0]
        assert re.search(r"#.*source", head), head.splitlines()[1]
        # Without a permission answer, the entry says why (its keys carry no scopes, ...).
        assert "[provider.answers.permission]" in block or re.search(
            r"(?m)^#.*(?:scope|permission)", block), head.splitlines()[1]


def test_each_api_documents_the_answers_its_emulator_gives() -> None:
    """The fixtures of every entry: where to probe, and what it answers to no key, a bad
    key and (when it requires a header) a request without that header."""
    for entry in entries():
        answers = entry["answers"]
        needed = {"path", "no_key", "bad_key"} | (
            {"no_version"} if entry.get("required_headers") else set())
        assert needed <= set(answers), (entry["id"], needed - set(answers))
    for provider in PROVIDERS:
        assert provider.hosts and provider.env and provider.key_types, provider.id
        assert provider.header


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        ("api.openai.com", "openai"),
        ("my-resource.openai.azure.com", "azure-openai"),
        ("shop.myshopify.com", "shopify"),
        ("API.Anthropic.com.", "anthropic"),
        ("slack.com", "slack"),
        ("example.com", None),
        ("openai.azure.com", None),
    ],
)
def test_hosts_name_their_provider(host: str, provider: str | None) -> None:
    found = for_host(host)
    assert (found.id if found else None) == provider


def test_a_provider_can_be_named_for_a_gateway_url() -> None:
    assert provider_at("http://127.0.0.1:8080/v1", "openai") is by_id("openai")
    assert provider_named("keyturn").id == "keyturn"
    with pytest.raises(ValueError, match="did you mean openai"):
        provider_named("opneai")


def test_the_verifiers_examples_still_name_their_providers() -> None:
    for key, name in [("sk-proj-" + "a" * 40, "OpenAI"), ("ghp_" + "a" * 36, "GitHub"),
                      ("AIza" + "b" * 35, "Google")]:
        found = identify(key)
        assert found is not None and found.name.startswith(name)


def test_loose_shapes_name_nobody() -> None:
    assert identify("0123456789abcdef0123456789abcdef") is None  # 32 hex: Azure? Datadog?
    assert identify("sk-0123456789abcdef0123456789abcdef") is None  # DeepSeek-like


DISTINCTIVE = [(p, t) for p in PROVIDERS for t in p.key_types if t.distinctive]


@pytest.mark.parametrize(
    ("provider", "key_type"), DISTINCTIVE, ids=[f"{p.id}:{t.name}" for p, t in DISTINCTIVE]
)
def test_each_distinctive_shape_identifies_its_own_provider(
    provider: Provider, key_type: KeyType
) -> None:
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(key_type.pattern, fullmatch=True))
    def check(key: str) -> None:
        found = identify_type(key)
        assert found is not None and found[0] is provider, (key, found)

    check()
