"""``keyturn explain``: the outcome catalogue, for people and for machines."""

from __future__ import annotations

import click

from keyturn.cli.output import UsageFailure, emit_json, format_option, table
from keyturn.outcomes import CATALOGUE, UnknownCode, lookup, render_markdown, render_text


@click.command()
@click.argument("code", required=False)
@click.option("--list", "list_all", is_flag=True, help="List every code in the catalogue.")
@format_option("text", "json", "markdown")
def explain(code: str | None, list_all: bool, fmt: str) -> None:
    """Explain an outcome or finding CODE: what it means and how to fix it."""
    if list_all or code is None:
        if code is None and not list_all:
            raise UsageFailure("name a CODE to explain, or use --list to see them all")
        entries = list(CATALOGUE.values())
        if fmt == "json":
            emit_json([e.as_dict() for e in entries])
        elif fmt == "markdown":
            click.echo("\n\n".join(render_markdown(e) for e in entries))
        else:
            table(
                ["code", "kind", "status", "title"],
                [(e.code, e.kind, e.status or "", e.title) for e in entries],
            )
        return
    try:
        outcome = lookup(code)
    except UnknownCode as exc:
        raise UsageFailure(f"{exc.args[0]} (see `keyturn explain --list`)") from None
    if fmt == "json":
        emit_json(outcome.as_dict())
    elif fmt == "markdown":
        click.echo(render_markdown(outcome))
    else:
        click.echo(render_text(outcome))
