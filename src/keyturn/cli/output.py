"""Shared CLI plumbing: ``--format``, ``--config``/``--db``, the manager, tables on a TTY.

Every command that touches keys loads the settings (flags, then ``KEYTURN_*``, then the
``--config`` TOML file) and builds its manager with ``keyturn.compose.build_manager``, as
``keyturn serve`` does, so a setting means the same on the command line as on the server.
Errors are ``keyturn.errors``, turned into one line and an exit code in one place, the
command group's ``main``.
"""

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

from keyturn.config import CONFIG_ENV, Settings, env_name, load_settings
from keyturn.manager import KeyManager

F = TypeVar("F", bound=Callable[..., Any])


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


def settings_options(func: F) -> F:
    """``--config`` and ``--db``: where the settings and the database are."""
    func = click.option(
        "--db",
        "database_url",
        default=None,
        metavar="URL",
        help=f"Database URL [default: sqlite:///keyturn.db; also ${env_name('database_url')}].",
    )(func)
    return click.option(
        "--config",
        "config_file",
        default=None,
        metavar="FILE",
        type=click.Path(dir_okay=False),
        help=f"TOML settings file (also ${CONFIG_ENV}); flags and KEYTURN_* win over it.",
    )(func)


def settings_from(config_file: str | None, **flags: Any) -> Settings:
    """The settings for a command: ``flags`` (those given), ``KEYTURN_*``, the TOML file."""
    return load_settings(flags, config_file=config_file)


@contextmanager
def open_manager(settings: Settings, *, create: bool = False) -> Iterator[KeyManager]:
    """The manager the settings describe, closed (and its usage flushed) afterwards.
    Only commands that make keys pass ``create``: the others refuse a database that does
    not exist rather than make an empty one."""
    from keyturn.compose import build_manager

    manager = build_manager(settings, create=create)
    try:
        yield manager
    finally:
        manager.close()


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
