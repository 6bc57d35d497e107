"""Shared CLI plumbing: ``--format``, ``--config``/``--db``, the manager, tables and colour.

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
    """Aligned columns under a bold heading on a terminal; tab-separated when piped."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
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
