"""A key typed where ``keyturn doctor`` wants a variable's name is never shown.

``--key-env "$OPENAI_API_KEY"`` (the value where the name belongs, an easy slip in a shell)
named no variable, so the doctor reported ``looked for sk-proj-... in the environment``:
the whole key, in every format, in a report people paste into bug trackers. The doctor
promises never to print the key nor eight characters of it; a value that cannot be a
variable's name, or that has a key's shape, is now bad usage (exit 2) whose message does
not quote it, as a bad ``-H`` header's is."""

from __future__ import annotations

import secrets
import uuid

import pytest
from click.testing import CliRunner

from keyturn.cli import main
from keyturn.doctor import diagnose
from keyturn.keys import generate_key
from tests.doctor.conftest import anthropic_key, assert_hidden, github_token, openai_key

KEYS = {
    "keyturn": lambda: generate_key("kt_live"),
    "openai": openai_key,
    "anthropic": anthropic_key,
    "github": github_token,
    "aws-secret": lambda: "wJalrXUtnFEMIK7MDENGbPxRfiCYzq3X9vQa1Lmn",
    # 32 hex characters (OpenWeatherMap, NewsAPI, many in-house keys): one case only, so
    # they passed a check wanting both cases and digits, and were quoted whole.
    "hex": lambda: "e" + secrets.token_hex(16)[1:],
    "hex-upper": lambda: "E" + secrets.token_hex(16)[1:].upper(),
    "hex-letters-first": lambda: "deadbeefcafe" + str(secrets.randbelow(10**20)).zfill(20),
    # Heroku API keys are UUIDs: the dashes made the pieces read as words.
    "uuid": lambda: str(uuid.uuid4()),
    "uuid-upper": lambda: str(uuid.uuid4()).upper(),
}


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
@pytest.mark.parametrize("kind", sorted(KEYS))
def test_a_key_given_as_the_variable_name_is_not_shown(kind: str, fmt: str) -> None:
    key = KEYS[kind]()
    result = CliRunner().invoke(
        main,
        ["doctor", "--no-keyring", "--no-probe", "--format", fmt, "--key-env", key],
        env={"API_KEY": ""},
    )
    assert result.exit_code == 2, result.output
    assert "--key-env" in result.output
    assert_hidden(result.output, key)


def test_the_library_refuses_it_too() -> None:
    key = openai_key()
    with pytest.raises(ValueError) as caught:
        diagnose(None, key_env=key, probe=False, use_keyring=False, environ={})
    assert_hidden(str(caught.value), key)


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "my_key", "_X1", "GITHUB_TOKEN_2"])
def test_a_variable_name_is_still_named(name: str) -> None:
    report = diagnose(None, key_env=name, probe=False, use_keyring=False, environ={})
    assert report.findings[0].code == "key_not_set"
    assert name in report.findings[0].detail


OPTIONS = [
    ["--key-file", "{key}"],
    ["--key-file", "/nowhere/{key}"],
    ["--dotenv", "/nowhere/{key}"],
    ["--provider", "{key}"],
    ["--send", "{key}"],
    ["--created-at", "{key}"],
    ["--max-age", "{key}"],
    ["--timeout", "{key}"],
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o[0])
@pytest.mark.parametrize(
    "kind",
    ["keyturn", "openai", "github", "hex", "hex-upper", "hex-letters-first", "uuid", "uuid-upper"],
)
def test_a_key_typed_for_another_option_is_not_shown(option: list[str], kind: str) -> None:
    """The same slip for every option whose usage error quotes what was typed
    (``--key-file "$KEY"``): the error names the option and masks the key."""
    key = KEYS[kind]()
    args = [part.format(key=key) for part in option]
    result = CliRunner().invoke(
        main, ["doctor", "--no-keyring", "--no-probe", *args, "https://api.openai.com/v1"],
        env={"API_KEY": ""},
    )
    assert result.exit_code == 2, result.output
    assert_hidden(result.output, key)


def test_ordinary_values_are_still_quoted() -> None:
    result = CliRunner().invoke(main, ["doctor", "--no-probe", "--timeout", "soon"])
    assert result.exit_code == 2 and "'soon'" in result.output
    result = CliRunner().invoke(main, ["doctor", "--no-probe", "--key-file", "/nowhere/key.txt"])
    assert result.exit_code == 2 and "/nowhere/key.txt" in result.output


@pytest.mark.parametrize(
    "text",
    ["OPENAI_API_KEY", "MY_SERVICE_TOKEN_V2", "GITHUB_TOKEN_2", "30", "2.5", "soon",
     "2024-01-01T00:00:00Z", "very_long_module_name_without_dots", "credentials-2024-backup",
     "/etc/keyturn/settings.toml", "MyServiceApiToken", "myServiceAccessToken2"],
)
def test_names_numbers_dates_and_paths_are_not_key_shaped(text: str) -> None:
    from keyturn._redact import key_shaped
    from keyturn.doctor.sources import looks_like_key, without_keys

    assert not looks_like_key(text) and not key_shaped(text)
    assert without_keys(f"--timeout {text!r} is not a number") == (
        f"--timeout {text!r} is not a number"
    )
