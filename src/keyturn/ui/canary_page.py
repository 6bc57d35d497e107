"""The canaries page: every canary key, and each use of one, newest first.

A use of a canary is an alarm (``keyturn._canary``): the page lists the canary keys
(``keys:read``) beside the ``key.canary_used`` events the outbox still holds, with the
client, method, path and user agent each request's headers told, so an operator sees which
decoy was found and from where without reading webhook logs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyturn import admin as keys
from keyturn._verifications import READ_SCOPE as LOG_READ
from keyturn.store.base import KeyFilter, RecordedEvent
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.forms import Form
from keyturn.ui.render import MOUNT

LISTED = 200  # canaries, and uses, on the page at most


async def canaries(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    listed = await ui.keys.list_keys(admin.actor, KeyFilter(canary=True), limit=LISTED)
    uses: list[RecordedEvent] = []
    reads_log = admin.can(LOG_READ)  # who tried a canary is the verification log's to tell
    if reads_log and admin.actor.owner is None:
        uses = list(await ui.keys.canary_uses(admin.actor, limit=LISTED))
    elif reads_log:  # an owner's admin key sees the uses of the owner's canaries only
        for key in listed:
            uses += await ui.keys.canary_uses(admin.actor, key.id, limit=LISTED)
        uses.sort(key=lambda use: use.at, reverse=True)
    uses_of: dict[str, list[RecordedEvent]] = {key.id: [] for key in listed}
    for use in uses:
        if use.key_id in uses_of:
            uses_of[use.key_id].append(use)
    return ui.render(
        "canaries.html",
        admin.session,
        admin,
        nav="canaries",
        canaries=listed,
        uses=uses[:LISTED],
        uses_of=uses_of,
        reads_log=reads_log,
        names={key.id: key.name for key in listed},
    )


def routes(ui: Dashboard) -> list[BaseRoute]:
    return [Route(f"{MOUNT}/canaries", ui.page(canaries, keys.READ), methods=["GET"])]
