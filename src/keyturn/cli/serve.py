"""``keyturn serve`` and ``keyturn init``: run the service, or only prepare its database.

Both create the root key when the database has no keys, and show it once. The service's
imports (uvicorn, FastAPI) happen inside ``serve``, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from typing import Any

import click

from keyturn._extras import require
from keyturn.admin import IssuedKey
from keyturn.cli.keyfile import private_file, refuse_existing
from keyturn.cli.output import (
    UsageFailure,
    emit_json,
    format_option,
    needs_extra,
)
from keyturn.cli.settings import (
    closed_or_undone,
    lasting,
    settings_from,
    settings_options,
    undo_new_database,
)
from keyturn.compose import build_manager
from keyturn.config import Settings
from keyturn.manager import KeyManager
from keyturn.store.base import masked_url

ADDRESS_IN_USE = 4  # the exit code when serve cannot listen (documented in keyturn.cli)


class AddressInUse(click.ClickException):
    """Another process listens on the address: one line, exit 4."""

    exit_code = ADDRESS_IN_USE


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ensure_free(settings: Settings) -> None:
    """Fail in one line, before a root key is made, when the port is taken (uvicorn
    would log a traceback-like error and exit 1 after startup)."""
    if ":" in settings.host and not _is_address(settings.host):
        raise UsageFailure(
            f"host {settings.host!r} is not an address: give the address alone (--host "
            "0.0.0.0, --host ::1) and the port with --port"
        )
    if settings.port == 0:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise UsageFailure(
                    f"cannot listen on {_origin(settings)}: {exc.strerror}"
                ) from None
            raise AddressInUse(
                f"{_origin(settings)} is already in use by another process; stop "
                "it, or choose another port with --port (or KEYTURN_PORT)"
            ) from None


# A wildcard address listens on every interface; a client on this machine reaches it on
# loopback (``curl http://0.0.0.0:8080`` works on Linux only).
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - read, not bound


def _origin(settings: Settings) -> str:
    """Where serve listens, as a URL on this machine writes it (an IPv6 address in brackets,
    loopback for a wildcard); ``HOST:PORT`` when the port is not known yet (``--port 0``)."""
    host = _LOOPBACK.get(settings.host, settings.host)
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{settings.port}" if settings.port else "HOST:PORT"


def _show_root_key(issued: IssuedKey, fmt: str, err: bool, origin: str = "HOST:PORT") -> None:
    """The root key, once, and a command that uses it: with ``origin`` (serve's address),
    one to paste as it is."""
    if fmt == "json":
        emit_json(
            {
                "created": True,
                "id": issued.record.id,
                "key": issued.key,
                "scopes": sorted(issued.record.scopes),
            }
        )
        return
    lines = [
        "",
        f"keyturn: new database: created the root key {issued.record.id} "
        f"(scope '*', {_life(issued)}).",
        "It is shown only this once. Store it in your secret manager now:",
        "",
        f"    {issued.key}",
        "",
        "Use it to create narrower keys, e.g.",
        f'    curl -X POST http://{origin}/v1/keys -H "Authorization: Bearer $ROOT_KEY" \\',
        "      -H 'content-type: application/json' -d '{\"name\": \"web\", \"scopes\": [\"api\"]}'",
        "",
    ]
    click.echo("\n".join(lines), err=err)


def _root_key(manager: KeyManager, path: str | None) -> IssuedKey | None:
    """The new root key, if the database has no keys; written to ``path`` when given."""
    from keyturn._bootstrap import ensure_root_key

    if path is None or manager.store.count():
        return ensure_root_key(manager)
    with private_file(path) as handle:
        issued = ensure_root_key(manager)
        if issued is not None:
            handle.write(issued.key + "\n")
    return issued


def _show_key_file(issued: IssuedKey, path: str, fmt: str) -> None:
    if fmt == "json":
        record = issued.record
        emit_json(
            {"created": True, "id": record.id, "key_file": path, "scopes": sorted(record.scopes)}
        )
        return
    click.echo(
        f"keyturn: new database: created the root key {issued.record.id} (scope '*', "
        f"{_life(issued)}) and wrote it to {path!r} (0600). Move it to your secret manager and "
        "delete the file."
    )


@needs_extra("serve")
@click.command(short_help="Serve the admin API, the verify API and forward-auth.")
@settings_options
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option(
    "--port", default=None, type=click.IntRange(0, 65535), help="Port [default: 8080; 0: any]."
)
@click.option("--realm", default=None, help="Realm in WWW-Authenticate [default: api].")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="'[METHOD ][= ]PATH=SCOPE[,SCOPE]'",
    help="Scopes /auth requires for a path and below it (or exactly it, after '= '), e.g. "
    "'/admin=admin' (repeat for more).",
)
@click.option(
    "--allow-query/--no-allow-query",
    default=None,
    help="Accept keys in the query string [default: no].",
)
@click.option(
    "--access-log/--no-access-log", default=None, help="JSON access log on stdout [default: on]."
)
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Server log level [default: info].",
)
@click.option(
    "--root-key-file",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="On a new database, write the root key to FILE (created 0600, never overwritten) "
    "instead of stderr, where log collectors would keep it.",
)
@click.option(
    "--redis",
    "redis_url",
    default=None,
    metavar="URL",
    help="Redis for rate limits shared by every instance, e.g. redis://127.0.0.1:6379/0, "
    "rediss://... (TLS) or unix:///run/redis.sock [default: counted in this process; also "
    "$KEYTURN_REDIS_URL].",
)
def serve(
    config_file: str | None, rules: tuple[str, ...], root_key_file: str | None, **flags: Any
) -> None:
    """Serve the admin API, the verify API and forward-auth (/auth) over HTTP.

    Settings come from flags, then KEYTURN_* environment variables, then the --config
    TOML file. On a database with no keys, a root key is created and shown once.
    """
    require("serve", "keyturn serve")
    if rules:
        table = {}
        for rule in rules:
            # The '=' after the path: an exact rule starts with one too ('= /x=scope').
            split = rule.find("=", max(rule.find("/"), 0))
            if split < 0:
                raise UsageFailure(f"bad --rule {rule!r}: write it as '/prefix=scope,scope'")
            table[rule[:split]] = rule[split + 1 :]
        flags["rules"] = table
    settings = settings_from(config_file, **flags)
    # The database first, so a bad --db is a usage error whatever holds the port; a new
    # database made here is removed again when the port turns out to be taken.
    manager = build_manager(settings, probe=True)
    try:
        _ensure_free(settings)
        issued = _root_key(manager, root_key_file)
    except BaseException:
        manager.close()
        undo_new_database(manager)
        raise
    if issued is not None and root_key_file is None:
        _show_root_key(issued, "text", err=True, origin=_origin(settings))
    elif issued is not None:
        click.echo(
            f"keyturn: new database: root key {issued.record.id} written to "
            f"{root_key_file!r} (0600); move it to your secret manager.",
            err=True,
        )
    click.echo(
        f"keyturn: database {masked_url(settings.database_url)}; "
        f"forward-auth at http://{_origin(settings)}/auth, "
        f"API docs at /docs{', dashboard at /ui' if settings.ui else ''}",
        err=True,
    )
    from keyturn.app import create_app
    from keyturn.service.server import serve as run

    run(create_app(settings, manager), settings)


@click.command(short_help="Create the database and its root key, without serving.")
@settings_options
@format_option()
@click.option(
    "--output",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the root key to FILE (created 0600, never overwritten) instead of stdout.",
)
def init(config_file: str | None, database_url: str | None, fmt: str, output: str | None) -> None:
    """Create the database and its root key (shown once), without serving.

    On a database that already has keys nothing is created and nothing secret is shown.
    """
    settings = settings_from(config_file, database_url=database_url)
    if output is not None:
        refuse_existing(output)  # before the database is touched
    with closed_or_undone(build_manager(lasting(settings))) as manager:
        issued = _root_key(manager, output)
        count = manager.store.count()
    if issued is not None and output is not None:
        _show_key_file(issued, output, fmt)
        return
    if issued is not None:
        _show_root_key(issued, fmt, err=False)
        return
    if fmt == "json":
        emit_json({"created": False, "keys": count})
    else:
        click.echo(
            f"keyturn: {masked_url(settings.database_url)} already holds {count} key(s); "
            "no root key created. Make another admin key with "
            "`keyturn keys create --name admin --scope '*'`.",
            err=True,
        )
    sys.exit(0)


def _life(issued: IssuedKey) -> str:
    """How long the root key lives: for ever, unless the lifetime policy says otherwise."""
    expires = issued.record.expires_at
    return "no expiry" if expires is None else f"expires {expires.isoformat(timespec='seconds')}"
