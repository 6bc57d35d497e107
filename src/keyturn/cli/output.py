"""Shared CLI plumbing: ``--format``, ``--db``, one-line errors, tables only on a TTY."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from keyturn.store import DEFAULT_URL, StoreError

F = TypeVar("F", bound=Callable[..., Any])

DB_ENV = "KEYTURN_DATABASE_URL"


class UsageFailure(click.ClickException):
    """Bad input: one line on stderr, exit 2, no traceback."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices or ("text", "json")),
        default="text",
        show_default=True,
        help="Output for people (text) or machines (json).",
    )


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db_url",
        envvar=DB_ENV,
        default=DEFAULT_URL,
        show_default=True,
        metavar="URL",
        help=f"Database URL (also ${DB_ENV}).",
    )(func)


@contextmanager
def failures_as_usage() -> Iterator[None]:
    """Turn the library's errors for bad input into exit-2 one-liners."""
    try:
        yield
    except (StoreError, ValueError) as exc:
        raise UsageFailure(str(exc)) from None


def console(err: bool = False) -> Console:
    # Colour and tables only when a person is watching; plain text when piped.
    return Console(
        stderr=err,
        highlight=False,
        soft_wrap=True,
        no_color=not sys.stdout.isatty() or "NO_COLOR" in os.environ,
    )


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    out = console()
    if not out.is_terminal:
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join("" if v is None else str(v) for v in row))
        return
    grid = Table(*columns, title=title)
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    out.print(grid)
