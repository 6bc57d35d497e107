"""`keyturn doctor` on the command line: formats, exit codes, one-line usage errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from keyturn.cli import main
from tests.doctor.apis import Api, Respond, anthropic_like, openai_like
from tests.doctor.conftest import anthropic_key, assert_hidden, openai_key

Serve = Callable[[Respond], Api]


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["doctor", *args], env=env, input=stdin)


def test_help_lists_the_options() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--key-env", "--key-file", "--key-stdin", "--send", "-X", "-H", "--dotenv",
                   "--max-age", "--created-at", "--no-probe", "--try-variants", "--format"):
        assert option in result.stdout


def test_offline_checks_pass_with_a_good_key() -> None:
    key = openai_key()
    result = run("https://api.openai.com/v1/models", "--no-probe",
                 env={"OPENAI_API_KEY": key})
    assert result.exit_code == 0, result.output
    assert "key_identified" in result.stdout and "Result: no errors" in result.stdout
    assert_hidden(result.output, key)


def test_an_error_finding_exits_1() -> None:
    result = run("https://api.openai.com/v1/models", "--no-probe")
    assert result.exit_code == 1
    assert "key_not_set" in result.stdout


def test_json_output_is_the_documented_shape() -> None:
    key = anthropic_key()
    result = run("https://api.openai.com/v1/models", "--format", "json",
                 env={"OPENAI_API_KEY": key})
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["url"] == "https://api.openai.com/v1/models"
    assert data["working_variant"] is None
    assert [s["name"] for s in data["steps"]] == ["key", "format", "validity", "probe"]
    assert "key_provider_mismatch" in [f["code"] for f in data["findings"]]
    assert_hidden(result.output, key)


def test_markdown_output_reads_as_a_bug_report(serve: Serve) -> None:
    key = openai_key()
    api = serve(openai_like(openai_key()))
    result = run(api.url("/v1/models"), "--provider", "openai", "--send", "x-api-key",
                 "--format", "markdown", env={"OPENAI_API_KEY": key})
    assert result.exit_code == 1
    text = result.stdout
    assert text.startswith("### keyturn doctor report")
    assert "| 4 | Probe | ❌ failed |" in text
    assert "`header_wrong`" in text and "`rejected_as_sent`" in text
    assert "`server_rejected_key`" not in text  # the header explains the 401, not the key
    assert "x-api-key: &lt;key&gt;" in text  # <key> survives GitHub's HTML sanitiser
    assert_hidden(result.output, key)


def test_an_authorised_probe_exits_0(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    result = run(api.url("/v1/models"), "--provider", "anthropic", "--key-stdin",
                 stdin=key + "\n")
    assert result.exit_code == 0, result.output
    assert "auth_ok" in result.stdout and "Result: authorised" in result.stdout
    assert "standard input" in result.stdout
    assert_hidden(result.output, key)


def test_try_variants_names_the_working_way(serve: Serve) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    result = run(api.url("/v1/models"), "--provider", "anthropic", "--send", "bearer",
                 "--try-variants", "--format", "json", env={"ANTHROPIC_API_KEY": key})
    assert result.exit_code == 1
    assert json.loads(result.stdout)["working_variant"] == "x-api-key + anthropic-version"


def test_headers_with_dollar_key_and_a_key_file(serve: Serve, tmp_path: Path) -> None:
    key = anthropic_key()
    api = serve(anthropic_like(key))
    path = tmp_path / "anthropic.key"
    path.write_text(key + "\n")
    result = run(api.url("/v1/models"), "--provider", "anthropic", "--key-file", str(path),
                 "-H", "x-api-key: $KEY", "-H", "anthropic-version: 2023-06-01")
    assert result.exit_code == 0, result.output
    assert api.seen[0].header("x-api-key") == key


def test_a_dotenv_option_and_the_method_option(serve: Serve, tmp_path: Path) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    env_file = tmp_path / "service.env"
    env_file.write_text(f'OPENAI_API_KEY="{key}"\n')
    result = run(api.url("/v1/models"), "--provider", "openai", "--dotenv", str(env_file),
                 "-X", "post")
    assert result.exit_code == 0, result.output
    assert api.seen[0].method == "POST"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key-env", "A", "--key-file", "b"], "only one of --key-env"),
        (["--format", "yaml"], "'--format'"),
        (["--send", "pigeon"], "--send 'pigeon'"),
        (["--provider", "opnai"], "unknown provider 'opnai'"),
        (["-H", "no colon here"], "bad header"),
        (["--max-age", "0"], "--max-age must be more than 0"),
        (["--max-age", "ninety"], "is not a number"),
        (["--created-at", "yesterday"], "ISO 8601"),
        (["--key-file", "/nonexistent/key"], "cannot read /nonexistent/key"),
        (["--dotenv", "/nonexistent/.env"], "no .env file"),
        (["--bogus-option"], "No such option"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run("https://api.openai.com/v1/models", "--no-probe", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_a_relative_url_is_bad_usage() -> None:
    result = run("api.openai.com/v1/models")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: URL 'api.openai.com/v1/models' must be")


def test_an_empty_stdin_is_no_key() -> None:
    result = run("https://api.openai.com/v1/models", "--key-stdin", stdin="")
    assert result.exit_code == 1
    assert "key_not_set" in result.stdout and "standard input" in result.stdout


def test_explain_knows_every_doctor_code() -> None:
    result = CliRunner().invoke(main, ["explain", "redirect_dropped_auth"])
    assert result.exit_code == 0
    assert "severity error" in result.stdout
