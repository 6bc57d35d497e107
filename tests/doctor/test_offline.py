"""Offline findings: everything the doctor can tell without sending a request."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from keyturn.doctor import diagnose, render_text
from keyturn.keys import generate_key
from tests.doctor.conftest import (
    MemoryKeyring,
    anthropic_key,
    assert_hidden,
    github_token,
    openai_key,
)

OPENAI = "https://api.openai.com/v1/models"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def offline(url: str | None = OPENAI, **kwargs: object) -> object:
    return diagnose(url, probe=False, now=NOW, **kwargs)  # type: ignore[arg-type]


# -- step 1: key present and clean ----------------------------------------------------------


def test_a_key_in_the_providers_variable_is_found_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = openai_key()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    report = offline()
    assert report.codes == ["key_source", "key_identified"]
    assert report.ok
    assert report.key_source == "environment variable OPENAI_API_KEY"
    assert report.step("key").findings[0].detail.startswith("environment variable OPENAI")
    assert_hidden(json.dumps(report.as_dict()), key)


def test_no_key_anywhere_is_key_not_set_and_names_where_it_looked() -> None:
    report = offline()
    assert report.codes == ["key_not_set"]
    assert not report.ok
    detail = report.findings[0].detail
    assert "OPENAI_API_KEY" in detail and "API_KEY" in detail and ".env" in detail
    assert report.step("probe").status == "skipped"


def test_an_empty_variable_is_not_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    report = offline()
    assert report.codes == ["key_not_set"]
    assert "set but empty: environment variable OPENAI_API_KEY" in report.findings[0].detail


def test_the_generic_api_key_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", openai_key())
    assert offline().key_source == "environment variable API_KEY"


def test_key_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_OPENAI", openai_key())
    monkeypatch.setenv("OPENAI_API_KEY", openai_key())
    assert offline(key_env="MY_OPENAI").key_source == "environment variable MY_OPENAI"


@pytest.mark.parametrize(
    "value", ["your-api-key-here", "xxx", "<your key>", "changeme", "${OPENAI_API_KEY}",
              "sk-xxxxxxxxxxxxxxxx", "sk-...", "YOUR_API_KEY", "{{ api_key }}", "%API_KEY%"]
)
def test_placeholders_are_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", value)
    report = offline()
    assert "key_placeholder" in report.codes
    assert not report.ok


def test_a_real_key_is_not_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", github_token())
    report = offline("https://api.github.com/user")
    assert "key_placeholder" not in report.codes


def test_a_trailing_newline_from_echo_is_key_whitespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = openai_key()
    monkeypatch.setenv("OPENAI_API_KEY", key + "\n")
    report = offline()
    assert "key_whitespace" in report.codes
    found = report.findings[report.codes.index("key_whitespace")]
    assert "ends with a line break" in found.detail
    # The later steps judge the cleaned key: it is still recognised as OpenAI's.
    assert "key_identified" in report.codes
    assert_hidden(json.dumps(report.as_dict()), key)


def test_a_windows_line_ending_in_a_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_bytes(openai_key().encode() + b"\r\n")
    report = offline(key_file=path)
    assert "key_whitespace" in report.codes
    assert "carriage return" in report.findings[report.codes.index("key_whitespace")].detail


def test_a_key_file_with_one_final_line_break_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text(openai_key() + "\n")
    report = offline(key_file=path)
    assert report.codes == ["key_source", "key_identified"]
    assert report.key_source == f"key file {path}"


@pytest.mark.parametrize("quoted", ['"{}"', "'{}'", "“{}”", "\"'{}'\""])
def test_a_quoted_key_is_key_quoted(monkeypatch: pytest.MonkeyPatch, quoted: str) -> None:
    key = openai_key()
    monkeypatch.setenv("OPENAI_API_KEY", quoted.format(key))
    report = offline()
    assert "key_quoted" in report.codes
    assert "key_identified" in report.codes


def test_bearer_inside_the_variable_is_key_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "Bearer " + openai_key())
    report = offline()
    assert report.step("key").findings[1].code == "key_malformed"
    assert "'Bearer <key>'" in report.step("key").findings[1].detail
    assert "key_identified" in report.codes


def test_a_whole_dotenv_line_as_value_is_key_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "OPENAI_API_KEY=" + openai_key())
    report = offline()
    assert "key_malformed" in report.codes
    assert "key_identified" in report.codes


def test_dotenv_is_read_when_the_environment_lacks_the_variable(world: Path) -> None:
    key = openai_key()
    (world / ".env").write_text(f"OPENAI_API_KEY={key}\n")
    report = offline()
    assert report.key_source == f"OPENAI_API_KEY in {world / '.env'}"
    assert report.ok


def test_dotenv_is_found_searching_upward(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (world / ".env").write_text(f"OPENAI_API_KEY={openai_key()}\n")
    sub = world / "src" / "pkg"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert offline().key_source == f"OPENAI_API_KEY in {world / '.env'}"


def test_an_old_shell_variable_shadows_the_new_key_in_dotenv(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = openai_key(), openai_key()
    (world / ".env").write_text(f"OPENAI_API_KEY={new}\n")
    monkeypatch.setenv("OPENAI_API_KEY", old)
    report = offline()
    assert "dotenv_shadowed" in report.codes
    assert report.key_source == "environment variable OPENAI_API_KEY"
    shadowed = report.findings[report.codes.index("dotenv_shadowed")]
    assert "unset OPENAI_API_KEY" in shadowed.fix
    assert_hidden(json.dumps(report.as_dict()), old, new)


def test_an_empty_shell_variable_also_shadows_dotenv(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (world / ".env").write_text(f"OPENAI_API_KEY={openai_key()}\n")
    monkeypatch.setenv("OPENAI_API_KEY", "")
    report = offline()
    assert report.codes[:2] == ["key_not_set", "dotenv_shadowed"]
    assert "set but empty" in report.findings[1].detail


def test_an_explicit_dotenv_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "prod.env"
    path.write_text(f"OPENAI_API_KEY={openai_key()}\n")
    assert offline(dotenv=path).key_source == f"OPENAI_API_KEY in {path}"


def test_a_missing_explicit_dotenv_is_bad_usage(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no \.env file"):
        offline(dotenv=tmp_path / "nope.env")


def test_the_keyring_is_the_last_source(memory_keyring: MemoryKeyring) -> None:
    key = openai_key()
    memory_keyring.set_password("keyturn", "OPENAI_API_KEY", key)
    report = offline()
    assert report.key_source == "OS keyring (keyturn / OPENAI_API_KEY)"
    assert report.ok


def test_a_different_key_in_the_keyring_is_key_shadowed(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    used, stored = openai_key(), openai_key()
    monkeypatch.setenv("OPENAI_API_KEY", used)
    memory_keyring.set_password("keyturn", "OPENAI_API_KEY", stored)
    report = offline()
    assert "key_shadowed" in report.codes
    assert_hidden(json.dumps(report.as_dict()), used, stored)


def test_no_keyring_backend_is_not_available_and_not_a_crash() -> None:
    keyring.set_keyring(fail.Keyring())
    report = offline()
    assert report.codes == ["key_not_set"]
    assert "OS keyring" not in report.findings[0].detail


def test_a_broken_keyring_backend_is_not_a_crash() -> None:
    class Broken(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise RuntimeError("the keyring daemon is locked")

    keyring.set_keyring(Broken())
    assert offline().codes == ["key_not_set"]


def test_netrc_for_the_host_is_netrc_override(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_key())
    netrc = Path.home() / ".netrc"
    netrc.write_text("machine api.openai.com login alice password hunter22\n")
    netrc.chmod(0o600)
    report = offline()
    assert "netrc_override" in report.codes
    found = report.findings[report.codes.index("netrc_override")]
    assert "machine api.openai.com" in found.detail and "login alice" in found.detail
    assert "hunter22" not in json.dumps(report.as_dict())


def test_a_netrc_default_entry_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_key())
    (Path.home() / ".netrc").write_text("default login bob password x\n")
    report = offline()
    assert "'default' entry" in report.findings[report.codes.index("netrc_override")].detail


def test_netrc_for_another_host_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_key())
    (Path.home() / ".netrc").write_text("machine example.org login bob password x\n")
    assert "netrc_override" not in offline().codes


# -- step 2: format ---------------------------------------------------------------------------


def test_an_anthropic_key_for_openai_is_key_provider_mismatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = anthropic_key()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    report = diagnose(OPENAI, now=NOW)  # a probe was allowed, but is not made
    assert "key_provider_mismatch" in report.codes
    found = report.findings[report.codes.index("key_provider_mismatch")]
    assert "Anthropic" in found.detail and "OpenAI" in found.detail
    assert "api.anthropic.com" in found.fix
    assert report.step("probe").status == "skipped"
    assert "does not send it" in report.step("probe").summary


def test_a_keyturn_key_for_a_catalogued_api_is_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", generate_key())
    assert "key_provider_mismatch" in offline().codes


def test_a_cut_off_key_is_key_malformed() -> None:
    report = offline("https://api.anthropic.com/v1/models", key=anthropic_key()[:60])
    assert "key_malformed" in report.codes
    assert "cut off" in report.findings[report.codes.index("key_malformed")].detail


def test_a_mistyped_github_token_fails_its_crc32() -> None:
    token = github_token()
    typo = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    good = offline("https://api.github.com/user", key=token)
    bad = offline("https://api.github.com/user", key=typo)
    assert "checksum valid" in good.findings[good.codes.index("key_identified")].detail
    assert "key_malformed" in bad.codes
    assert "CRC32" in bad.findings[bad.codes.index("key_malformed")].detail


def test_a_mistyped_keyturn_key_fails_its_checksum() -> None:
    key = generate_key()
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert "key_identified" in offline(None, key=key).codes
    assert "key_malformed" in offline(None, key=typo).codes


def test_a_value_that_is_no_openai_key_at_all_is_malformed() -> None:
    report = offline(key="hello-world-1234567890")
    assert "key_malformed" in report.codes
    assert "sk-" in report.findings[report.codes.index("key_malformed")].detail


@pytest.mark.parametrize(
    ("url", "key", "says"),
    [
        ("https://api.stripe.com/v1/charges", "pk_test_" + "a1B2" * 6, "publishable"),
        ("https://api.github.com/user", github_token("ghr_"), "refresh token"),
        ("https://api.twilio.com/2010-04-01/Accounts.json", "AC" + "0a" * 16, "Account SID"),
        ("https://slack.com/api/auth.test", "xapp-1-A0123456789-1234567890-abcdef0123", "Socket"),
    ],
)
def test_the_wrong_kind_of_key_is_key_wrong_type(url: str, key: str, says: str) -> None:
    report = offline(url, key=key)
    assert "key_wrong_type" in report.codes
    assert says in report.findings[report.codes.index("key_wrong_type")].detail


def test_key_type_says_test_or_live_mode() -> None:
    report = offline("https://api.stripe.com/v1/charges", key="sk_test_" + "a1B2" * 6)
    assert report.codes == ["key_source", "key_identified"]
    assert "test mode" in report.findings[1].detail


def test_a_jwt_is_identified_without_a_provider() -> None:
    assert "a JSON Web Token" in offline(None, key=jwt({"sub": "x"})).findings[1].detail


def test_lowercase_bearer_in_a_header_is_scheme_lowercase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_key())
    report = offline(headers=[("Authorization", "bearer $KEY")])
    assert "scheme_lowercase" in report.codes
    assert report.findings[report.codes.index("scheme_lowercase")].severity == "warning"
    assert report.ok  # a warning alone does not fail the offline checks


def test_lowercase_bearer_is_named_for_unknown_apis_too() -> None:
    report = offline("https://api.example.com/", key="abcdefghijklmnop1234",
                     headers=[("Authorization", "bearer $KEY")])
    assert "scheme_lowercase" in report.codes


def test_token_scheme_for_openai_is_scheme_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_key())
    report = offline(send_as="token")
    assert "scheme_wrong" in report.codes
    assert "Authorization: Bearer <key>" in report.findings[report.codes.index("scheme_wrong")].fix


def test_github_accepts_its_legacy_token_scheme() -> None:
    report = offline("https://api.github.com/user", key=github_token(), send_as="token")
    assert "scheme_wrong" not in report.codes


def test_bearer_for_anthropic_is_header_wrong_and_misses_the_version() -> None:
    report = offline("https://api.anthropic.com/v1/messages", key=anthropic_key(),
                     send_as="bearer")
    assert {"header_wrong", "missing_required_header"} <= set(report.codes)
    missing = report.findings[report.codes.index("missing_required_header")]
    assert "anthropic-version: 2023-06-01" in missing.detail


def test_the_documented_way_needs_no_flags() -> None:
    report = offline("https://api.anthropic.com/v1/messages", key=anthropic_key())
    assert report.codes == ["key_source", "key_identified"]
    assert "x-api-key: <key>" in report.step("format").summary


def test_linear_personal_keys_go_bare_in_authorization() -> None:
    key = "lin_api_" + "a1B2c3D4e5" * 4
    bare = offline("https://api.linear.app/graphql", key=key,
                   headers=[("Authorization", "$KEY")])
    bearer = offline("https://api.linear.app/graphql", key=key, send_as="bearer")
    assert "scheme_wrong" not in bare.codes
    assert "scheme_wrong" in bearer.codes


def test_plain_http_to_another_host_is_insecure_transport() -> None:
    report = offline("http://api.example.com/v1", key="abcdefghijklmnop1234")
    assert "insecure_transport" in report.codes
    assert "https://api.example.com/v1" in report.findings[
        report.codes.index("insecure_transport")].fix


def test_plain_http_to_loopback_is_fine() -> None:
    assert "insecure_transport" not in offline("http://127.0.0.1:8000/", key="a" * 20).codes
    assert "insecure_transport" not in offline("http://localhost:8000/", key="a" * 20).codes


def test_a_proxy_from_the_environment_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s3cret@proxy.corp:3128")
    report = offline(key=openai_key())
    assert "proxy_in_env" in report.codes
    detail = report.findings[report.codes.index("proxy_in_env")].detail
    assert "proxy.corp:3128" in detail and "s3cret" not in detail


def test_no_proxy_exempts_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    monkeypatch.setenv("no_proxy", "localhost,.openai.com")
    assert "proxy_in_env" not in offline(key=openai_key()).codes


# -- step 3: validity -------------------------------------------------------------------------


def test_a_key_older_than_max_age_is_key_expired_by_age() -> None:
    report = offline(key=openai_key(), created_at=(NOW - timedelta(days=120)).isoformat())
    assert "key_expired_by_age" in report.codes
    assert "120 days ago" in report.findings[report.codes.index("key_expired_by_age")].detail


def test_a_key_near_max_age_is_key_expiring_soon() -> None:
    report = offline(key=openai_key(), created_at="2025-03-10", max_age_days=90)
    assert "key_expiring_soon" in report.codes
    assert report.ok  # only a warning


def test_a_young_key_passes_the_age_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_CREATED_AT", "2025-05-01T00:00:00Z")
    report = offline(key=openai_key())
    assert report.step("validity").status == "passed"
    assert "left" in report.step("validity").summary


def test_a_bad_creation_date_is_bad_usage() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        offline(key=openai_key(), created_at="last tuesday")


def jwt(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


def test_an_expired_jwt_is_token_expired() -> None:
    stamp = int((NOW - timedelta(hours=2)).timestamp())
    report = offline(None, key=jwt({"exp": stamp}))
    assert "token_expired" in report.codes
    assert "2 hours ago" in report.findings[report.codes.index("token_expired")].detail


def test_a_jwt_from_the_future_is_token_not_yet_valid() -> None:
    soon = int((NOW + timedelta(hours=1)).timestamp())
    assert offline(None, key=jwt({"nbf": soon})).codes.count("token_not_yet_valid") == 1
    assert "clock" in offline(None, key=jwt({"iat": soon})).findings[-1].detail


def test_a_current_jwt_passes() -> None:
    stamp = int(NOW.timestamp())
    report = offline(None, key=jwt({"iat": stamp - 10, "exp": stamp + 3600}))
    assert report.step("validity").status == "passed"
    assert report.ok


# -- the report -------------------------------------------------------------------------------


def test_without_a_url_only_offline_checks_run() -> None:
    report = diagnose(key=openai_key(), now=NOW)
    assert report.step("probe").status == "skipped"
    assert report.probe is None and report.url is None


def test_steps_are_reported_in_order_with_their_status() -> None:
    report = offline(key=anthropic_key())
    data = report.as_dict()
    assert [s["name"] for s in data["steps"]] == ["key", "format", "validity", "probe"]
    assert [s["status"] for s in data["steps"]] == ["passed", "failed", "skipped", "skipped"]
    assert set(data) >= {"ok", "url", "steps", "findings", "working_variant"}
    assert data["findings"] == [f for s in data["steps"] for f in s["findings"]]
    for found in data["findings"]:
        assert set(found) == {"code", "severity", "title", "detail", "fix"}


def test_unknown_provider_and_bad_send_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        offline(provider="opnai")
    with pytest.raises(ValueError, match="--send"):
        offline(send_as="carrier-pigeon")
    with pytest.raises(ValueError, match="absolute"):
        offline("api.openai.com/v1")


def test_a_password_in_the_url_is_not_reported() -> None:
    report = offline("https://alice:pa55word@api.example.com/v1", key=openai_key())
    assert report.url == "https://***@api.example.com/v1"
    assert "pa55word" not in json.dumps(report.as_dict())


def test_a_keyturn_key_is_named_with_its_public_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scrubber hid the prefix as a piece of the key: "a keyturn key (prefix …)"."""
    key = generate_key(prefix="acme_live")
    monkeypatch.setenv("API_KEY", key)
    report = offline(None)
    text = render_text(report)
    assert "a keyturn key (prefix acme_live_)" in text
    assert_hidden(text + json.dumps(report.as_dict()), key)
    assert "acme_live_" + key.removeprefix("acme_live_")[:4] not in text  # nothing after it
