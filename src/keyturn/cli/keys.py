"""``keyturn keys ...``: issue and manage keys from a terminal."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click

from keyturn.cli.output import (
    console,
    db_option,
    emit_json,
    failures_as_usage,
    format_option,
    table,
)
from keyturn.durations import parse_duration, parse_expiry
from keyturn.keys import validate_prefix
from keyturn.manager import IssuedKey, KeyManager
from keyturn.record import KeyRecord
from keyturn.store import KeyFilter


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


REDIS_ENV = "KEYTURN_REDIS_URL"
REDIS_PREFIX_ENV = "KEYTURN_REDIS_PREFIX"


@contextmanager
def open_manager(db_url: str) -> Iterator[KeyManager]:
    """The manager for a command; with ``$KEYTURN_REDIS_URL`` set it counts rate limits in
    the same Redis as the servers, so ``keyturn check`` answers as they would."""
    with failures_as_usage():
        limiter = None
        redis_url = os.environ.get(REDIS_ENV)
        if redis_url:
            from keyturn.ratelimit import DEFAULT_KEY_PREFIX, RateLimiter

            prefix = os.environ.get(REDIS_PREFIX_ENV) or DEFAULT_KEY_PREFIX
            limiter = RateLimiter(redis_url, key_prefix=prefix)
        manager = KeyManager(db_url, limiter=limiter)
        try:
            yield manager
        finally:
            manager.close()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def _show_issued(issued: IssuedKey, fmt: str, verb: str) -> None:
    record = issued.record
    if fmt == "json":
        emit_json({**record.public(), "key": issued.key})
        return
    out = console()
    out.print(
        f"{verb} key [bold]{record.id}[/bold] ({record.name}), "
        f"scopes: {', '.join(sorted(record.scopes)) or '(none)'}, "
        f"expires: {_when(record.expires_at)}"
    )
    out.print()
    click.echo(f"    {issued.key}")
    out.print()
    out.print(
        "[yellow]Copy it now: this is the only time it is shown.[/yellow] "
        "keyturn stores only its hash."
    )


def _show_record(record: KeyRecord, fmt: str) -> None:
    if fmt == "json":
        emit_json(record.public())
        return
    public = record.public()
    width = max(len(k) for k in public)
    for name, value in public.items():
        if isinstance(value, list):
            value = ", ".join(value) or "(none)"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
        click.echo(f"{name.ljust(width)}  {'' if value is None else value}")


@click.group()
def keys() -> None:
    """Issue, list, rotate and revoke API keys."""


@keys.command()
@click.option("--name", required=True, help="What the key is for, e.g. 'billing worker'.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A permission the key holds (repeat for more).",
)
@click.option(
    "--expires-in",
    default="90d",
    show_default=True,
    metavar="DURATION|never",
    help="Lifetime like 30s, 15m, 12h, 90d, or 'never'.",
)
@click.option("--prefix", default=None, metavar="P", help="Key prefix (default kt_live).")
@click.option("--owner", default=None, metavar="O", help="Who the key belongs to.")
@click.option(
    "--rate-limit",
    "rate_limits",
    multiple=True,
    metavar="N/PERIOD",
    help="A rate limit like 100/second or 10000/day (repeat for more).",
)
@click.option(
    "--credits", type=click.IntRange(0), default=None, help="Uses the key has (default: no limit)."
)
@click.option(
    "--refill",
    type=click.Choice(["daily", "monthly"]),
    default=None,
    help="Refill the credits every UTC day or month.",
)
@db_option
@format_option()
def create(
    name: str,
    scopes: tuple[str, ...],
    expires_in: str,
    prefix: str | None,
    owner: str | None,
    rate_limits: tuple[str, ...],
    credits: int | None,
    refill: str | None,
    db_url: str,
    fmt: str,
) -> None:
    """Create a key and show it once."""
    with failures_as_usage():
        lifetime = parse_expiry(expires_in)
        if prefix is not None:
            validate_prefix(prefix)
    with open_manager(db_url) as manager:
        issued = manager.create_key(
            name,
            scopes=scopes,
            expires_in=lifetime,
            prefix=prefix,
            owner=owner,
            actor=cli_actor(),
            rate_limits=rate_limits,
            credits=credits,
            refill=refill,
        )
    _show_issued(issued, fmt, "Created")


@keys.command()
@click.argument("key_id")
@click.option(
    "--rate-limit",
    "rate_limits",
    multiple=True,
    metavar="N/PERIOD",
    help="Replace the key's rate limits (repeat for more).",
)
@click.option("--no-rate-limits", is_flag=True, help="Remove the key's rate limits.")
@click.option("--credits", default=None, metavar="N|unlimited", help="Set the uses left.")
@click.option(
    "--refill", type=click.Choice(["daily", "monthly"]), default=None, help="Refill period."
)
@db_option
@format_option()
def update(
    key_id: str,
    rate_limits: tuple[str, ...],
    no_rate_limits: bool,
    credits: str | None,
    refill: str | None,
    db_url: str,
    fmt: str,
) -> None:
    """Change a key's rate limits or credits."""
    changes: dict[str, object] = {}
    if rate_limits or no_rate_limits:
        changes["rate_limits"] = () if no_rate_limits else rate_limits
    if credits is not None:
        with failures_as_usage():
            if credits != "unlimited" and not credits.isdigit():
                raise ValueError(f"invalid --credits {credits[:20]!r}: a number or 'unlimited'")
        changes["credits"] = None if credits == "unlimited" else int(credits)
    if refill is not None:
        changes["refill"] = refill
    with open_manager(db_url) as manager:
        record = manager.update(key_id, actor=cli_actor(), **changes)  # type: ignore[arg-type]
    _show_record(record, fmt)


@keys.command(name="list")
@click.option("--owner", default=None, help="Only keys of this owner.")
@click.option(
    "--status",
    type=click.Choice(["active", "revoked", "disabled", "rotated", "expired"]),
    default=None,
)
@click.option("--search", default=None, help="Substring of name or owner, or an exact id.")
@click.option(
    "--expiring-within",
    default=None,
    metavar="DURATION",
    help="Only keys expiring within this time, e.g. 30d.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", default=None, metavar="ID", help="Page on after this key id.")
@db_option
@format_option()
def list_(
    owner: str | None,
    status: str | None,
    search: str | None,
    expiring_within: str | None,
    limit: int,
    after: str | None,
    db_url: str,
    fmt: str,
) -> None:
    """List keys, newest first (masked: full keys are never stored)."""
    with failures_as_usage():
        expiring = (
            datetime.now().astimezone() + parse_duration(expiring_within)
            if expiring_within
            else None
        )
    filters = KeyFilter(
        owner=owner,
        status=status,  # type: ignore[arg-type]  # click.Choice guarantees a Status
        search=search,
        expiring_before=expiring,
    )
    with open_manager(db_url) as manager:
        records = manager.list_keys(filters, limit=limit, after=after)
    if fmt == "json":
        emit_json(
            {
                "keys": [r.public() for r in records],
                "next": records[-1].id if len(records) == limit else None,
            }
        )
        return
    table(
        ["id", "name", "owner", "key", "scopes", "status", "created", "expires", "last used"],
        [
            (
                r.id,
                r.name,
                r.owner or "",
                r.masked,
                ",".join(sorted(r.scopes)),
                r.status(),
                _when(r.created_at),
                _when(r.expires_at),
                _when(r.last_used_at) if r.last_used_at else "",
            )
            for r in records
        ],
    )
    if len(records) == limit:
        click.echo(f"more: keyturn keys list --after {records[-1].id}", err=True)


@keys.command()
@click.argument("key_id")
@db_option
@format_option()
def show(key_id: str, db_url: str, fmt: str) -> None:
    """Show one key's record."""
    with open_manager(db_url) as manager:
        record = manager.get(key_id)
    _show_record(record, fmt)


def _state_command(verb: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @click.argument("key_id")
    @db_option
    @format_option()
    def command(key_id: str, db_url: str, fmt: str) -> None:
        with open_manager(db_url) as manager:
            record = getattr(manager, verb)(key_id, actor=cli_actor())
        if fmt == "json":
            emit_json(record.public())
        else:
            click.echo(f"{record.id} ({record.name}, {record.masked}) is now {record.status()}")

    return command


keys.add_command(_state_command("revoke", "Revoke a key for good."))
keys.add_command(_state_command("disable", "Disable a key (undo with enable)."))
keys.add_command(_state_command("enable", "Re-enable a disabled key."))


@keys.command()
@click.argument("key_id")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How long the old key keeps working.",
)
@db_option
@format_option()
def rotate(key_id: str, grace: str, db_url: str, fmt: str) -> None:
    """Replace a key with a new one; the old one works for a grace period."""
    with failures_as_usage():
        grace_period = parse_duration(grace)
    with open_manager(db_url) as manager:
        issued = manager.rotate(key_id, grace=grace_period, actor=cli_actor())
    _show_issued(issued, fmt, f"Rotated {key_id} (old key works for {grace}); new")
