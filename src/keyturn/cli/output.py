"""Shared CLI plumbing: ``--format``, usage errors, tables and colour.

It imports no settings and no manager (those are ``keyturn.cli.settings``): ``keyturn
scan``, run by a pre-commit hook on every commit, needs this module and not the service.
Errors are ``keyturn.errors``, turned into one line and an exit code in one place, the
command group's ``main``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from keyturn._extras import missing
from keyturn._printable import printable

F = TypeVar("F", bound=Callable[..., Any])


class UsageFailure(click.ClickException):
    """Bad input: one line on stderr, exit 2, no traceback."""

    exit_code = 2


def needs_extra(extra: str) -> Callable[[click.Command], click.Command]:
    """For a command that needs an extra (put above ``@click.command``): without it, the
    command's help still shows its usage and options, and says what to install, in its line
    of ``keyturn --help`` and under its own ``--help``; running it stops with that line."""

    def mark(command: click.Command) -> click.Command:
        gap = missing(extra, f"keyturn {command.name}")
        if gap is not None:
            command.short_help = f"{command.get_short_help_str()} Not installed: {gap.install}."
            # \b: click keeps the lines as written, so the command is never broken.
            command.epilog = (
                f"\b\nNot installed here: keyturn's {extra!r} extra. Install it with\n"
                f"    {gap.install}"
            )
        return command

    return mark


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices or ("text", "json")),
        default="text",
        show_default=True,
        help="Output for people (text) or machines (json).",
    )


def styled_output(err: bool = False) -> bool:
    """Whether to colour and align: only when a person is watching (a terminal, and no
    ``NO_COLOR``); piped output is plain text a program can read."""
    stream = sys.stderr if err else sys.stdout
    return stream.isatty() and "NO_COLOR" not in os.environ


_STYLES = {"red", "green", "yellow", "cyan", "blue", "magenta"}


def echo_styled(text: str, style: str, err: bool = False) -> None:
    """One line in ``style`` (words such as ``"bold red"`` or ``"dim"``), by click's ANSI
    codes: the core CLI colours without a terminal library."""
    words = set(style.split())
    if words:
        colour = next(iter(words & _STYLES), None)
        text = click.style(
            text, fg=colour, bold=("bold" in words) or None, dim=("dim" in words) or None
        )
    click.echo(text, err=err)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """Aligned columns under a bold heading on a terminal; tab-separated when piped.
    Cells are data, some of it written by clients (paths, user agents, a receiver's
    error), so their control characters are escaped: none can drive the terminal or
    forge a row."""
    cells = [["" if v is None else printable(str(v)) for v in row] for row in rows]
    if not styled_output():
        click.echo("\t".join(columns))
        for row in cells:
            click.echo("\t".join(row))
        return
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    if title:
        click.echo(click.style(title, bold=True))
    click.echo(click.style("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
                           bold=True).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
