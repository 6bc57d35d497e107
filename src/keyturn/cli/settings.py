"""``--config``/``--db``, the settings they name, and the manager built from them.

Every command that touches keys loads the settings (flags, then ``KEYTURN_*``, then the
``--config`` TOML file) and builds its manager with ``keyturn.compose.build_manager``, as
``keyturn serve`` does, so a setting means the same on the command line as on the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from keyturn.cli.output import F
from keyturn.config import CONFIG_ENV, Settings, env_name, load_settings
from keyturn.errors import InvalidValue
from keyturn.manager import KeyManager
from keyturn.store import normal_url
from keyturn.store.sqlite import SQLiteStore, in_memory


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


def lasting(settings: Settings) -> Settings:
    """The settings, if their database outlives the command: a key made in an in-memory
    database (``sqlite:///:memory:``, or ``sqlite:///`` from an unset variable) would be
    shown and lost, and a list of one would be empty."""
    url = settings.database_url
    if (plain := normal_url(url)).startswith("sqlite://") and in_memory(plain):
        raise InvalidValue(
            f"database {url!r} is in memory and ends with this command: name a file, e.g. "
            "--db sqlite:///keyturn.db (an empty variable in the URL gives this)",
            "database_url",
        )
    return settings


@contextmanager
def open_manager(settings: Settings, *, create: bool = False) -> Iterator[KeyManager]:
    """The manager the settings describe, closed (and its usage flushed) afterwards.
    Only commands that make keys pass ``create``: the others refuse a database that does
    not exist rather than make an empty one."""
    from keyturn.compose import build_manager

    with closed_or_undone(build_manager(lasting(settings), create=create)) as manager:
        yield manager


@contextmanager
def closed_or_undone(manager: KeyManager) -> Iterator[KeyManager]:
    """``manager``, closed afterwards; and when the command fails, the SQLite file it
    created removed again. ``keyturn keys create --scope 'bad scope'`` in a new folder (or
    ``init --output`` into a missing folder) left an empty keyturn.db behind, which the
    next command then took for the deployment's database."""
    try:
        yield manager
    except BaseException:
        manager.close()
        undo_new_database(manager)
        raise
    manager.close()


def undo_new_database(manager: KeyManager) -> None:
    """Remove the SQLite file (and its journal) that ``manager``'s store created, if it did;
    ``manager`` is closed."""
    created = manager.store.created if isinstance(manager.store, SQLiteStore) else None
    if created is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{created}{suffix}").unlink(missing_ok=True)
