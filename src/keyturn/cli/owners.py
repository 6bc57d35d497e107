"""``keyturn owners ...``: an owner's shared limits, its usage, and all its keys at once.

A translator, as ``keyturn keys`` is: flags become ``OwnerLimits`` for the owner operations
of the admin layer (``keyturn._owners``), made by the operator (``cli:<user>`` in the audit
log) with the same rules and validation as ``PUT /v1/owners/{owner}``.
"""

from __future__ import annotations

import click

from keyturn._owners import OwnerLimits, OwnerUsage
from keyturn._printable import printable
from keyturn.cli.keys import cli_actor
from keyturn.cli.output import emit_json, format_option
from keyturn.cli.settings import (
    open_manager,
    settings_from,
    settings_options,
)


def _show(usage: OwnerUsage, fmt: str) -> None:
    shown = usage.public()
    if fmt == "json":
        emit_json(shown)
        return
    width = max(len(k) for k in shown)
    for name, value in shown.items():
        if isinstance(value, list):
            value = ", ".join(value) or "(none)"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v != 0) or "(none)"
        click.echo(f"{name.ljust(width)}  {'' if value is None else printable(str(value))}")


@click.group(short_help="An owner's limits; revoke or disable all its keys at once.")
def owners() -> None:
    """Limits shared by all of an owner's keys; revoke or disable all its keys at once."""


@owners.command(name="set", short_help="Set OWNER's limits; what is not given is removed.")
@click.argument("owner")
@click.option(
    "--rate-limit",
    "rate_limits",
    multiple=True,
    metavar="N/PERIOD",
    help="A rate limit for all of the owner's keys together, like 100/second (repeat).",
)
@click.option(
    "--credits", type=click.IntRange(0), default=None, help="One balance its keys spend from."
)
@click.option(
    "--refill",
    type=click.Choice(["daily", "monthly"]),
    default=None,
    help="Refill the balance every UTC day or month.",
)
@settings_options
@format_option()
def set_(
    owner: str,
    rate_limits: tuple[str, ...],
    credits: int | None,
    refill: str | None,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Set OWNER's limits (what is not given is none: `set acme` removes every limit)."""
    limits = OwnerLimits(rate_limits, credits, refill)
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        stored = manager.owners.put(cli_actor(), owner, limits)
        usage = manager.owners.get(cli_actor(), stored.owner)
    _show(usage, fmt)


@owners.command(short_help="Show OWNER's limits, keys, credits left and requests.")
@click.argument("owner")
@settings_options
@format_option()
def show(owner: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
    """Show OWNER's limits, its keys per status, its credits left and its requests."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        usage = manager.owners.get(cli_actor(), owner)
    _show(usage, fmt)


def _all_keys_command(verb: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @click.argument("owner")
    @settings_options
    @format_option()
    def command(owner: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
        with open_manager(settings_from(config_file, database_url=database_url)) as manager:
            changed = getattr(manager.owners, verb)(cli_actor(), owner)
        if fmt == "json":
            emit_json({"owner": owner, "changed": [record.public() for record in changed]})
            return
        past = {"revoke": "revoked", "disable": "disabled"}[verb]
        click.echo(printable(f"{len(changed)} key(s) of {owner} {past}"))
        for record in changed:
            click.echo(printable(f"  {record.id} ({record.name}, {record.masked})"))

    return command


owners.add_command(_all_keys_command("revoke", "Revoke every key of OWNER, for good."))
owners.add_command(_all_keys_command("disable", "Disable every live key of OWNER."))
