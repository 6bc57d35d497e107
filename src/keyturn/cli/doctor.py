"""``keyturn doctor``: troubleshoot a 401/403 from any API, step by step."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from keyturn._extras import require
from keyturn.cli.check import parse_header
from keyturn.cli.output import (
    UsageFailure,
    echo_styled,
    format_option,
    needs_extra,
    styled_output,
)

if TYPE_CHECKING:
    from keyturn.doctor.report import Report

# The doctor's own default (keyturn.doctor.validity, pinned equal by a test): written here
# because importing the doctor needs its extra, and the help must answer without it.
DEFAULT_MAX_AGE_DAYS = 90


def _positive(value: str, option: str, kind: type[int] | type[float]) -> Any:
    from keyturn.doctor.sources import without_keys

    try:
        number = kind(value)
    except ValueError:
        raise UsageFailure(without_keys(f"{option} {value!r} is not a number")) from None
    if number <= 0:
        raise UsageFailure(f"{option} must be more than 0")
    return number


def _stdin_key() -> str:
    from keyturn.doctor.sources import read_bounded

    if sys.stdin is None or sys.stdin.isatty():
        raise UsageFailure("--key-stdin reads the key from standard input: pipe it in")
    return read_bounded(sys.stdin.buffer, "standard input")


def _show(report: Report, fmt: str) -> None:
    from keyturn.doctor import render_json, render_markdown
    from keyturn.doctor.render import render_text, text_output

    if fmt == "json":
        click.echo(render_json(report))
    elif fmt == "markdown":
        click.echo(render_markdown(report))
    else:
        if styled_output():
            for text, style in text_output(report):
                echo_styled(text, style)
        else:
            click.echo(render_text(report))


@needs_extra("doctor")
@click.command(short_help="Find out why an API rejects a key.")
@click.argument("url", required=False)
@click.option("--key-env", metavar="NAME", help="Read the key from this environment variable.")
@click.option("--key-file", metavar="PATH", help="Read the key from this file.")
@click.option("--key-stdin", is_flag=True, help="Read the key from standard input.")
@click.option("--send", "send_as", metavar="WAY",
              help="How your client sends the key: bearer, x-api-key, token, basic[:USER], "
                   "header:NAME or query:NAME. Default: as the provider documents.")
@click.option("-X", "--request", "method", default="GET", show_default=True, metavar="METHOD",
              help="HTTP method of the probe.")
@click.option("-H", "--header", "headers", multiple=True, metavar="'Name: value'",
              help="A header to send (repeat for more); '$KEY' in it stands for the key. "
                   "Quote it with single quotes so the shell leaves $KEY alone.")
@click.option("--dotenv", metavar="PATH",
              help="The .env file to read (default: searched upward from here).")
@click.option("--max-age", "max_age", default=str(DEFAULT_MAX_AGE_DAYS), show_default=True,
              metavar="DAYS", help="Maximum key age for the validity step.")
@click.option("--created-at", metavar="ISO",
              help="When the key was created (default: $KEY_CREATED_AT).")
@click.option("--no-probe", is_flag=True, help="Offline checks only: send nothing.")
@click.option("--try-variants", is_flag=True,
              help="On 401/403, retry the same origin with other ways of sending the key.")
@click.option("--provider", metavar="ID",
              help="Treat URL as this catalogued API (a proxy, gateway or regional host).")
@click.option("--allow-insecure", is_flag=True,
              help="Send the key over plain http:// to a host that is not this machine.")
@click.option("--no-keyring", is_flag=True, help="Do not look in the OS keyring.")
@click.option("--timeout", default="10", show_default=True, metavar="SECONDS",
              help="Time bound of the whole probe (every request, redirect and variant).")
@format_option("text", "json", "markdown")
def doctor(url: str | None, key_env: str | None, key_file: str | None, key_stdin: bool,
           send_as: str | None, method: str, headers: tuple[str, ...], dotenv: str | None,
           max_age: str, created_at: str | None, no_probe: bool, try_variants: bool,
           provider: str | None, allow_insecure: bool, no_keyring: bool, timeout: str,
           fmt: str) -> None:
    """Find out why an API rejects a key: where the key comes from, whether it is clean
    and well formed, whether it is still valid, and what the server says about it.

    Without a key option the key comes from the API's usual variable (OPENAI_API_KEY for
    api.openai.com, ...) or API_KEY, in the environment, .env or the OS keyring. Without URL
    only the offline checks run. The key is never printed and never sent to another origin.

    Exit 0 when the probe was authorised (or, without a probe, when nothing is wrong),
    1 otherwise, 2 on bad usage.
    """
    require("doctor", "keyturn doctor")
    from keyturn.doctor import diagnose
    from keyturn.doctor.sources import without_keys

    if sum([key_env is not None, key_file is not None, key_stdin]) > 1:
        raise UsageFailure("use only one of --key-env, --key-file and --key-stdin")
    max_age_days = _positive(max_age, "--max-age", int)
    seconds = _positive(timeout, "--timeout", float)
    pairs = [parse_header(h) for h in headers]
    try:
        key = _stdin_key() if key_stdin else None
        report = diagnose(
            url,
            key=key,
            key_label="standard input",
            key_env=key_env,
            key_file=key_file,
            send_as=send_as,
            method=method,
            headers=pairs,
            dotenv=dotenv,
            max_age_days=max_age_days,
            created_at=created_at,
            probe=not no_probe,
            try_other_ways=try_variants,
            provider=provider,
            allow_insecure=allow_insecure,
            use_keyring=not no_keyring,
            timeout=seconds,
        )
    except ValueError as exc:  # each quotes what was typed, which may be a key misplaced
        raise UsageFailure(without_keys(str(exc))) from None
    except OSError as exc:
        where = without_keys(str(exc.filename or "a file"))
        raise UsageFailure(f"cannot read {where}: {exc.strerror}") from None
    _show(report, fmt)
    sys.exit(0 if report.ok else 1)
