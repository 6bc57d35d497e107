"""``keyturn roles ...``: named sets of scopes that keys hold (``keyturn keys --role``).

A translator, as ``keyturn owners`` is: flags go to the role operations of the admin layer
(``keyturn.roles``), made by the operator (``cli:<user>`` in the audit log) with the same
rules and validation as ``/v1/roles``.
"""

from __future__ import annotations

import click

from keyturn._printable import printable
from keyturn.cli.keys import cli_actor
from keyturn.cli.output import (
    emit_json,
    format_option,
    table,
)
from keyturn.cli.settings import (
    open_manager,
    settings_from,
    settings_options,
)
from keyturn.roles import Role


def _show(role: Role, fmt: str) -> None:
    if fmt == "json":
        emit_json(role.public())
        return
    shown = role.public()
    width = max(len(k) for k in shown)
    for name, value in shown.items():
        if isinstance(value, list):
            value = ", ".join(value) or "(none)"
        click.echo(f"{name.ljust(width)}  {'' if value is None else printable(str(value))}")


@click.group(short_help="Named sets of scopes that keys hold.")
def roles() -> None:
    """Roles: named sets of scopes; a key holding one has its scopes too."""


@roles.command()
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope the role grants (repeat for more; what is not given is not granted).",
)
@click.option(
    "--description",
    default=None,
    help="What the role is for (left out: none, even if the role had one).",
)
@settings_options
@format_option()
def put(
    name: str,
    scopes: tuple[str, ...],
    description: str | None,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Define or replace role NAME, scopes and description.

    Every key holding it changes at once (other instances within the propagation
    bound)."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        role = manager.roles.put(cli_actor(), name, scopes, description)
    _show(role, fmt)


@roles.command()
@click.argument("name")
@settings_options
@format_option()
def show(name: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
    """Show role NAME: its scopes and how many keys hold it."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        role = manager.roles.get(cli_actor(), name)
    _show(role, fmt)


@roles.command(name="list")
@settings_options
@format_option()
def list_(config_file: str | None, database_url: str | None, fmt: str) -> None:
    """List roles by name."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        found = manager.roles.list_roles(cli_actor())
    if fmt == "json":
        emit_json({"roles": [role.public() for role in found]})
        return
    table(
        ["name", "scopes", "keys", "description"],
        [(r.name, ",".join(sorted(r.scopes)), str(r.holders), r.description or "") for r in found],
    )


@roles.command()
@click.argument("name")
@settings_options
@format_option()
def delete(name: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
    """Delete role NAME. A role that working keys hold is refused (exit 1) with how many:
    take it off them first (keyturn keys list --role NAME; keyturn keys update ID --role ...)."""
    with open_manager(settings_from(config_file, database_url=database_url)) as manager:
        role = manager.roles.delete(cli_actor(), name)
    if fmt == "json":
        emit_json({**role.public(), "deleted": True})
        return
    click.echo(f"deleted role {role.name}")
