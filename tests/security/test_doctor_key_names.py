"""A key typed where ``keyturn doctor`` wants a variable's name is never shown.

``--key-env "$OPENAI_API_KEY"`` (the value where the name belongs, an easy slip in a shell)
named no variable, so the doctor reported ``looked for sk-proj-... in the environment``:
the whole key, in every format, in a report people paste into bug trackers. The doctor
promises never to print the key nor eight characters of it; a value that cannot be a
variable's name, or that has a key's shape, is now bad usage (exit 2) whose message does
not quote it, as a bad ``-H`` header's is."""

from __future__ import annotations

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
