"""``keyturn keys ...``: issue and manage keys from a terminal.

A translator: flags become the admin layer's requests (``NewKey``, ``KeyChange``), made by
the operator (``cli:<user>`` in the audit log) with the same rules, defaults and
validation as the admin API and the dashboard (``keyturn.admin``). The manager comes from
the settings, as ``keyturn serve``'s does.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta

import click

from keyturn._durations import parse_duration, parse_expiry
from keyturn._printable import printable
from keyturn._states import STATUSES
from keyturn._suggestions import MAX_DAYS
from keyturn.actor import Actor
from keyturn.admin import UNSET, IssuedKey, KeyChange, NewKey, Unset
from keyturn.cli.output import (
    emit_json,
    format_option,
    styled_output,
    table,
)
from keyturn.cli.settings import (
    open_manager,
    settings_from,
    settings_options,
)
from keyturn.errors import Conflict, InvalidValue
from keyturn.record import KeyRecord
from keyturn.store import KeyFilter
from keyturn.store.sqlite import SQLiteStore


def cli_actor() -> Actor:
    """The operator at this terminal."""
    try:
        return Actor.operator(f"cli:{getpass.getuser()}")
    except (KeyError, OSError):
        return Actor.operator("cli")


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _grace_end(end: datetime | None, expires: datetime | None) -> str:
    """When a rotated key stops: its grace's end, or its own expiry when that comes first
    (an expired key is refused whatever its grace; the message named the later time)."""
    if expires is not None and (end is None or expires <= end):
        return f"{_when(expires)}, when it expires"
    return _when(end)


def _show_issued(issued: IssuedKey, fmt: str, verb: str) -> None:
    record = issued.record
    if fmt == "json":
        emit_json({**record.public(), "key": issued.key})
        return
    styled = styled_output()
    key_id = click.style(record.id, bold=True) if styled else record.id
    click.echo(
        f"{verb} key {key_id} ({printable(record.name)}), "
        f"scopes: {', '.join(sorted(record.granted)) or '(none)'}, "
        + (f"roles: {', '.join(record.roles)}, " if record.roles else "")
        + f"expires: {_when(record.expires_at)}"
    )
    click.echo()
    click.echo(f"    {issued.key}")
    click.echo()
    warning = "Copy it now: this is the only time it is shown."
    click.echo(f"{click.style(warning, fg='yellow') if styled else warning} "
               "keyturn stores only its hash.")


def _show_record(record: KeyRecord, fmt: str) -> None:
    if fmt == "json":
        emit_json(record.public())
        return
    public = {**record.public(), "status": _status(record)}
    width = max(len(k) for k in public)
    for name, value in public.items():
        if isinstance(value, list):
            value = ", ".join(value) or "(none)"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
        click.echo(f"{name.ljust(width)}  {'' if value is None else printable(str(value))}")


@click.group()
def keys() -> None:
    """Issue, list, rotate and revoke API keys."""


@keys.command(short_help="Create a key and show it once.")
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
@click.option(
    "--prefix",
    default=None,
    metavar="P",
    help="Key prefix: one the deployment accepts (the prefixes setting) [default: its first].",
)
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
@click.option(
    "--allow-ip",
    "allowed_ips",
    multiple=True,
    metavar="ADDRESS|CIDR",
    help="Only accept the key from this address or block, e.g. 10.0.0.0/8 (repeat for more).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ROLE",
    help="A role whose scopes the key holds too (repeat for more; see keyturn roles).",
)
@click.option(
    "--canary",
    is_flag=True,
    help="A canary key: refused exactly like an unknown key, and every use sends "
    "key.canary_used to the webhooks. Plant it where only an intruder would look.",
)
@settings_options
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
    allowed_ips: tuple[str, ...],
    roles: tuple[str, ...],
    canary: bool,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Create a key and show it once (the database is created if it does not exist)."""
    new = NewKey(
        name,
        scopes,
        parse_expiry(expires_in),
        owner,
        {},
        prefix,
        rate_limits,
        credits,
        refill,
        allowed_ips=allowed_ips,
        canary=canary,
        roles=roles,
    )
    settings = settings_from(config_file, database_url=database_url)
    with open_manager(settings, create=True) as manager:
        issued = manager.admin.create(cli_actor(), new)
        created = manager.store.created if isinstance(manager.store, SQLiteStore) else None
    _show_issued(issued, fmt, "Created")
    if created is not None:
        click.echo(
            f"keyturn: new database {str(created)!r}: a server accepts this key only if it "
            f"reads this file (--db sqlite:///{created})",
            err=True,
        )


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
@click.option(
    "--allow-ip",
    "allowed_ips",
    multiple=True,
    metavar="ADDRESS|CIDR",
    help="Replace the addresses the key is accepted from (repeat for more).",
)
@click.option("--any-ip", is_flag=True, help="Accept the key from any address again.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ROLE",
    help="Replace the key's roles (repeat for more).",
)
@click.option("--no-roles", is_flag=True, help="Take every role off the key.")
@settings_options
@format_option()
def update(
    key_id: str,
    rate_limits: tuple[str, ...],
    no_rate_limits: bool,
    credits: str | None,
    refill: str | None,
    allowed_ips: tuple[str, ...],
    any_ip: bool,
    roles: tuple[str, ...],
    no_roles: bool,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Change a key's rate limits, credits, allowed addresses or roles."""
    limits = () if no_rate_limits else (rate_limits or UNSET)
    uses: int | Unset | None = UNSET
    if credits is not None:
        if credits != "unlimited" and not credits.isdigit():
            raise InvalidValue(f"invalid --credits {credits[:20]!r}: a number or 'unlimited'")
        uses = None if credits == "unlimited" else int(credits)
    change = KeyChange(
        rate_limits=limits,
        credits=uses,
        refill=refill or UNSET,
        allowed_ips=() if any_ip else (allowed_ips or UNSET),
        roles=() if no_roles else (roles or UNSET),
    )
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        record = manager.admin.update(cli_actor(), key_id, change)
    _show_record(record, fmt)


@keys.command(name="list")
@click.option("--owner", default=None, help="Only keys of this owner.")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default=None,
    help="Only keys in this state (rotated: replaced, whether or not its grace is over).",
)
@click.option("--search", default=None, help="Substring of name or owner, or an exact id.")
@click.option("--role", default=None, help="Only keys holding this role.")
@click.option(
    "--expiring-within",
    default=None,
    metavar="DURATION",
    help="Only keys expiring within this time, e.g. 30d.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", default=None, metavar="ID", help="Page on after this key id.")
@settings_options
@format_option()
def list_(
    owner: str | None,
    status: str | None,
    search: str | None,
    role: str | None,
    expiring_within: str | None,
    limit: int,
    after: str | None,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """List keys, newest first (masked: full keys are never stored)."""
    expiring = (
        datetime.now(UTC) + parse_duration(expiring_within) if expiring_within else None
    )
    filters = KeyFilter(
        owner=owner,
        status=status,  # type: ignore[arg-type]  # click.Choice guarantees a Status
        search=search,
        expiring_before=expiring,
        role=role,
    )
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        records = manager.admin.list_keys(cli_actor(), filters, limit=limit, after=after)
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
                _status(r),
                _when(r.created_at),
                _when(r.expires_at),
                _when(r.last_used_at) if r.last_used_at else "",
            )
            for r in records
        ],
    )
    if len(records) == limit:
        click.echo(f"more: keyturn keys list --after {records[-1].id}", err=True)


@keys.command(short_help="Show one key; if rotated, who still uses it.")
@click.argument("key_id")
@settings_options
@format_option()
def show(key_id: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
    """Show one key's record; for a rotated key, who still uses it (from the verification
    log: client address, method and path, requests and last use since the rotation)."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        record = manager.admin.get(cli_actor(), key_id)
        found = manager.admin.callers(cli_actor(), key_id) if record.replaced_by else None
    if found is None:
        _show_record(record, fmt)
        return
    callers = found.callers
    if fmt == "json":
        emit_json({**record.public(), "still_used_by": [c.public() for c in callers]})
    else:
        _show_record(record, fmt)
        click.echo()
        if not callers:
            click.echo("Nobody has used it since the rotation (as the verification log shows).")
            return
        click.echo("Still used since the rotation by (from the verification log):")
        table(
            ("CLIENT", "METHOD", "PATH", "REQUESTS", "LAST SEEN"),
            [
                (c.client or "(unknown)", c.method, c.path, str(c.requests), _when(c.last_seen))
                for c in callers
            ],
        )


@keys.command(short_help="The scopes and addresses a key's requests needed.")
@click.argument("key_id")
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, MAX_DAYS),
    help="Look at the last N whole days (UTC, today included).",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Narrow the key to the suggestion (one audited change), if it is complete.",
)
@settings_options
@format_option()
def suggest(
    key_id: str,
    days: int,
    apply: bool,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Suggest the least privilege for a key: the scopes its requests needed and the
    address ranges they came from (from the verification log)."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        found = manager.admin.suggest(cli_actor(), key_id, days)
        record = manager.admin.get(cli_actor(), key_id)
        narrows = found.narrows(record.scopes, record.allowed_ips)
        narrowed = None
        if apply:
            if not found.complete:
                raise Conflict(
                    f"not narrowing key {key_id}: the suggestion is not complete "
                    f"({'; '.join(found.reasons)})"
                )
            if narrows:
                narrowed = manager.admin.narrow(
                    cli_actor(),
                    key_id,
                    scopes=found.scopes,
                    allowed_ips=found.allowed_ips,
                    reason={"suggested_from_days": days},
                )
    if fmt == "json":
        shown = found.public()
        if narrowed is not None:
            shown["narrowed"] = narrowed.public()
        emit_json(shown)
        return
    requests = f"{found.logged} logged of {found.counted} counted accepted requests"
    click.echo(f"Key {key_id}, last {days} days ({requests}):")
    scopes = "(not known)" if found.scopes is None else ", ".join(found.scopes) or "(none)"
    click.echo(f"  scopes needed:  {scopes}")
    if found.unused:
        click.echo(f"  scopes unused:  {', '.join(found.unused)}")
    ips = "(not known)" if found.allowed_ips is None else ", ".join(found.allowed_ips)
    click.echo(f"  addresses from: {ips}")
    for reason in found.reasons:
        click.echo(f"  not complete:   {reason}")
    if narrowed is not None:
        click.echo(f"Narrowed {key_id}: now {_status(narrowed)}, scopes "
                   f"{', '.join(sorted(narrowed.scopes)) or '(none)'}, allowed from "
                   f"{', '.join(narrowed.allowed_ips)}")  # fmt: skip
    elif narrows:
        click.echo(f"Apply with: keyturn keys suggest {key_id} --days {days} --apply")
    elif found.complete:
        click.echo("Nothing to narrow: the key holds what its requests needed and no more.")


def _status(record: KeyRecord) -> str:
    """The status, and for a rotated key still in its grace period, until when it works."""
    status = record.status()
    if status == "rotated" and record.usable():
        return f"rotated (works until {_when(record.grace_until)})"
    return status


def _state_command(verb: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @click.argument("key_id")
    @settings_options
    @format_option()
    def command(key_id: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
        with open_manager(settings_from(config_file, database_url=database_url)) as manager:
            record = getattr(manager.admin, verb)(cli_actor(), key_id)
        if fmt == "json":
            emit_json(record.public())
        else:
            shown = f"{record.id} ({record.name}, {record.masked}) is now {_status(record)}"
            click.echo(printable(shown))

    return command


keys.add_command(_state_command("revoke", "Revoke a key for good."))
keys.add_command(_state_command("disable", "Disable a key (undo with enable)."))
keys.add_command(_state_command("enable", "Re-enable a disabled key."))


@keys.command(short_help="Replace a key; the old one works for a while.")
@click.argument("key_id")
@click.option(
    "--grace",
    default=None,
    metavar="DURATION",
    help="How long the old key keeps working: 30s, 15m, 12h, 7d; 0 stops it now. "
    "[default: 24h]",
)
@click.option(
    "--grace-until-quiet",
    "quiet",
    default=None,
    metavar="DURATION",
    help="Keep the old key working until nobody has used it for this long, e.g. 15m "
    "(at most --grace-max).",
)
@click.option(
    "--grace-max",
    default=None,
    metavar="DURATION",
    help="With --grace-until-quiet: the longest the old key keeps working. [default: 7d]",
)
@settings_options
@format_option()
def rotate(
    key_id: str,
    grace: str | None,
    quiet: str | None,
    grace_max: str | None,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Replace a key with a new one; the old one works for a grace period, or until its
    clients have moved to the new one (--grace-until-quiet)."""
    if quiet is None and grace_max is not None:
        raise InvalidValue("--grace-max bounds --grace-until-quiet: give both, or use --grace")
    if quiet is not None and grace is not None:
        raise InvalidValue("with --grace-until-quiet, bound the grace with --grace-max")
    bound = grace_max if quiet is not None else grace
    period = None if bound is None else parse_duration(bound, zero=quiet is None)
    quiet_period = parse_duration(quiet) if quiet is not None else None
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        issued = manager.admin.rotate(cli_actor(), key_id, period, quiet=quiet_period)
        old = manager.admin.get(cli_actor(), key_id)
    if quiet_period is not None:
        said = (
            f"old key works until unused for {quiet}, at the latest until "
            f"{_grace_end(old.grace_max, old.expires_at)}"
        )
    else:
        said = "old key stops now" if period == timedelta(0) else (
            f"old key works until {_grace_end(old.grace_until, old.expires_at)}"
        )
    _show_issued(issued, fmt, f"Rotated {key_id} ({said}); new")
