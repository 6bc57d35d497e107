"""The verification log's page: "why was it rejected?" for a request id a user reports.

Filters the log (``keyturn._verifications``) by request id, key id or outcome, newest
first; each outcome links to its catalogue explanation on the check page's terms. Needs
``verifications:read``.
"""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyturn._verifications import READ_SCOPE, VerificationFilter
from keyturn.outcomes import CATALOGUE
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.audit_page import bad_filter, query_filters
from keyturn.ui.echo import echo
from keyturn.ui.forms import Form
from keyturn.ui.render import MOUNT

PAGE_SIZE = 100
_FILTER = re.compile(r"[\x21-\x7e]{1,128}")


async def verifications(
    ui: Dashboard, request: Request, admin: Admin, form: Form | None
) -> Response:
    values = query_filters(request, ("request_id", "key_id", "outcome"), _FILTER)
    if isinstance(values, str):
        return bad_filter(ui, admin, values)
    filters = VerificationFilter(
        key_id=values["key_id"] or None,
        outcome=values["outcome"] or None,
        request_id=values["request_id"] or None,
    )
    store = ui.manager.sync.store
    rows = await asyncio.to_thread(store.verifications, filters, limit=PAGE_SIZE)
    return ui.render(
        "verifications.html",
        admin.session,
        admin,
        nav="audit",
        rows=rows,
        values=echo(values),
        titles={code: outcome.title for code, outcome in CATALOGUE.items()},
        fixes={code: outcome.fix for code, outcome in CATALOGUE.items()},
    )


def routes(ui: Dashboard) -> list[BaseRoute]:
    return [
        Route(f"{MOUNT}/verifications", ui.page(verifications, READ_SCOPE), methods=["GET"])
    ]
