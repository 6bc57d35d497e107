"""``keyturn webhooks ...``: subscribe to key lifecycle events from a terminal.

A translator, like ``keyturn keys``: flags become the operations of ``keyturn._webhooks``,
made by the operator (``cli:<user>`` in the audit log) with the same URL rules and event
names as ``/v1/webhooks``. The signing secret is shown once, by ``create``.
"""

from __future__ import annotations

import click

from keyturn import _events as events
from keyturn._webhooks import NewWebhook
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


@click.group()
def webhooks() -> None:
    """Send signed key lifecycle events to URLs (docs/webhooks.md)."""


@webhooks.command()
@click.option("--url", required=True, help="Where to post events (http or https).")
@click.option(
    "--event",
    "chosen",
    multiple=True,
    metavar="TYPE",
    help=f"An event type to send (repeat for more; default: all): {', '.join(events.TYPES)}.",
)
@click.option("--description", default=None, help="What the webhook is for.")
@settings_options
@format_option()
def create(
    url: str,
    chosen: tuple[str, ...],
    description: str | None,
    config_file: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Subscribe URL to key events; its signing secret is shown once."""
    settings = settings_from(config_file, database_url=database_url)
    with open_manager(settings) as manager:
        made = manager.webhooks.create(
            cli_actor(), NewWebhook(url, chosen or (events.ANY,), description)
        )
    if fmt == "json":
        emit_json(made.public())
        return
    hook = made.webhook
    click.echo(f"Created webhook {hook.id} -> {hook.url} ({', '.join(hook.events)})")
    click.echo()
    click.echo(f"    {made.secret}")
    click.echo()
    click.echo("The signing secret is shown once: give it to the receiver now.")


@webhooks.command(name="list")
@settings_options
@format_option()
def list_(config_file: str | None, database_url: str | None, fmt: str) -> None:
    """The webhooks (never their secrets)."""
    settings = settings_from(config_file, database_url=database_url)
    with open_manager(settings) as manager:
        found = manager.webhooks.list(cli_actor())
    if fmt == "json":
        emit_json({"webhooks": [w.public() for w in found]})
        return
    table(
        ["id", "url", "events", "description"],
        [(w.id, w.url, ", ".join(w.events), w.description or "") for w in found],
    )


@webhooks.command()
@click.argument("webhook_id")
@settings_options
@format_option()
def delete(webhook_id: str, config_file: str | None, database_url: str | None, fmt: str) -> None:
    """Delete a webhook and its deliveries log."""
    settings = settings_from(config_file, database_url=database_url)
    with open_manager(settings) as manager:
        manager.webhooks.delete(cli_actor(), webhook_id)
    if fmt == "json":
        emit_json({"id": webhook_id, "deleted": True})
        return
    click.echo(f"Deleted webhook {webhook_id}")


@webhooks.command(short_help="List a webhook's deliveries, newest first.")
@click.argument("webhook_id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@settings_options
@format_option()
def deliveries(
    webhook_id: str, limit: int, config_file: str | None, database_url: str | None, fmt: str
) -> None:
    """A webhook's deliveries, newest first: pending, delivered and failed."""
    settings = settings_from(config_file, database_url=database_url)
    with open_manager(settings) as manager:
        found = manager.webhooks.deliveries(cli_actor(), webhook_id, limit=limit)
    if fmt == "json":
        emit_json({"deliveries": [d.public() for d in found]})
        return
    table(
        ["id", "event", "type", "status", "attempts", "last status", "last error"],
        [
            (d.id, d.event_id, d.type, d.status, d.attempts, d.last_status, d.last_error or "")
            for d in found
        ],
    )
