"""``keyturn check``: run a request's headers through the verifier, see the exact answer.

Built from the same settings as ``keyturn serve`` (pepper, prefixes, key headers, realm), so
it answers what the server would. A check is never a use: it spends no credit, counts no
rate limit and leaves the key's last-used time and usage counts alone.
"""

from __future__ import annotations

import sys

import click

from keyturn._addresses import parse_address
from keyturn._printable import printable
from keyturn.answer import render
from keyturn.cli.output import emit_json, format_option
from keyturn.cli.settings import (
    open_manager,
    settings_from,
    settings_options,
)
from keyturn.errors import InvalidValue


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip():
        # Not echoed: the text may be a key typed without its header name.
        raise InvalidValue("bad header: write it as 'Name: value' (its text is not shown)")
    return name, value.strip(" \t")


@click.command(short_help="Show how serve would answer a request's credentials.")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'Name: value'",
    help="A request header (repeat for more).",
)
@click.option("--query", default="", metavar="'a=b&c=d'", help="The request's query string.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope the request needs (repeat for more).",
)
@click.option(
    "--permissions",
    default=None,
    metavar="EXPRESSION",
    help="What the request needs, as an expression over scopes, like "
    "'orders:read and (orders:write or admin)'.",
)
@click.option(
    "--ip",
    default=None,
    metavar="ADDRESS",
    help="The address the request comes from (its peer; when that is a trusted proxy, "
    "X-Forwarded-For names the client). Needed for keys restricted by address.",
)
@settings_options
@format_option()
def check(
    headers: tuple[str, ...],
    query: str,
    scopes: tuple[str, ...],
    permissions: str | None,
    ip: str | None,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Show the outcome and full HTTP answer for a request's credentials, as `keyturn
    serve` with the same settings would answer. Not a use of the key.

    Exit 0 when the key is accepted, 1 when it is rejected, 2 on bad usage.
    """
    pairs = [parse_header(h) for h in headers]
    if ip is not None and parse_address(ip) is None:
        raise InvalidValue(f"--ip {ip[:64]!r} is not an IP address")
    settings = settings_from(config_file, database_url=database_url)
    with open_manager(settings) as manager:
        decision = manager.check(
            pairs, query.removeprefix("?"), scopes=scopes, peer=ip, permissions=permissions
        )
    answer = render(decision, realm=settings.realm, public_url=settings.public_url)
    if fmt == "json":
        emit_json(
            {
                "code": decision.code,
                "missing": decision.unmet or None,
                "status": answer.status,
                "headers": dict(answer.headers),
                "body": answer.body,
            }
        )
    else:
        click.echo(f"{decision.code}: {decision.outcome.title} (HTTP {answer.status})")
        if decision.detail:
            click.echo(f"  detail: {decision.detail}")
        if decision.unmet:
            click.echo(f"  missing: {decision.unmet}")
        if not decision.ok:
            click.echo(f"  fix:    {decision.hint}")
        for name, value in answer.headers:
            click.echo(f"  {name}: {value}")
        if decision.ok and decision.key is not None:
            key = decision.key
            click.echo(
                f"  key:    {key.id} ({printable(key.name)}, {key.masked}), "
                f"scopes: {', '.join(sorted(key.granted)) or '(none)'}"
            )
    sys.exit(0 if decision.ok else 1)
