"""``keyturn explain``: the outcome catalogue, for people and for machines."""

from __future__ import annotations

from collections.abc import Sequence

import click

from keyturn._outcome_search import search
from keyturn.cli.output import UsageFailure, emit_json, format_option, table
from keyturn.outcomes import CATALOGUE, Outcome, UnknownCode, lookup, render_markdown, render_text


@click.command(short_help="Explain an outcome or finding CODE and how to fix it.")
@click.argument("code", required=False)
@click.option("--list", "list_all", is_flag=True, help="List every code in the catalogue.")
@click.option(
    "--search",
    "query",
    metavar="TEXT",
    help="Find codes by words of their code, title, explanation or fix (best first; "
    "tolerates typos), as GET /outcomes?q= does.",
)
@format_option("text", "json", "markdown")
def explain(code: str | None, list_all: bool, query: str | None, fmt: str) -> None:
    """Explain an outcome or finding CODE (in any case): what it means and how to fix it.

    Exit 0, or 1 when --search finds nothing; 2 for a code the catalogue does not hold.
    """
    if sum((code is not None, list_all, query is not None)) > 1:
        raise UsageFailure("give a CODE, --list or --search, one of them")
    if query is not None:
        found = search(query)
        _listing(found, fmt)
        if not found:
            click.echo(f"no code matches {query!r} (see `keyturn explain --list`)", err=True)
            raise SystemExit(1)
        return
    if list_all or code is None:
        if not list_all:
            raise UsageFailure("name a CODE to explain, --search TEXT, or --list to see them all")
        _listing(list(CATALOGUE.values()), fmt)
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


def _listing(entries: Sequence[Outcome], fmt: str) -> None:
    if fmt == "json":
        emit_json([e.as_dict() for e in entries])
    elif fmt == "markdown":
        if entries:
            click.echo("\n\n".join(render_markdown(e) for e in entries))
    elif entries:
        table(
            ["code", "kind", "status", "title"],
            [(e.code, e.kind, e.status or "", e.title) for e in entries],
        )
