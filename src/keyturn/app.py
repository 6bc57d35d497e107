"""``keyturn serve`` as one ASGI app: the service, the dashboard and the portal, composed.

The composition module at the top of the package. ``keyturn.service`` (forward-auth, the
admin and verify API, the probes) and ``keyturn.ui`` (the dashboard) each build on the
core alone; this module is the only place that knows both, so neither package imports the
other. A new face (a gRPC server, say) is composed here the same way: built from the same
``ServiceContext`` (its manager from ``keyturn.compose``), mounted or run beside these.
"""

from __future__ import annotations

from keyturn._extras import require

require("serve", "keyturn.app")

import sys
from typing import TextIO, cast

from keyturn._asgi import ASGIApp
from keyturn._delivery import Deliverer
from keyturn._redact import Redactor
from keyturn._reminders import Reminders
from keyturn.compose import build_manager
from keyturn.config import Settings
from keyturn.manager import KeyManager
from keyturn.service.access_log import AccessLines
from keyturn.service.app import KeyturnService
from keyturn.service.context import build_context
from keyturn.store.base import EventStore
from keyturn.ui.outcome_pages import MOUNTS, build_outcome_pages


def create_app(
    settings: Settings | None = None,
    manager: KeyManager | None = None,
    *,
    log_stream: TextIO | None = None,
) -> ASGIApp:
    """The full service for ``settings`` (its manager built by ``keyturn.compose`` unless
    given), with the outcome catalogue at ``/outcomes`` (always), the dashboard at ``/ui``
    and the customer portal at ``/portal`` unless the settings turn them off, the webhook
    worker (``keyturn._delivery``) and the time-driven events (``keyturn._reminders``)
    running while the app is, wrapped in the access log (written to ``log_stream``, stdout
    by default) when it is on."""
    settings = settings or Settings()
    manager = manager or build_manager(settings, probe=True)
    deliverer = Deliverer(
        cast(EventStore, manager.store), allow_private=settings.webhook_allow_private
    )
    reminders = Reminders(
        manager.admin,
        cast(EventStore, manager.store),
        warnings=settings.expiry_warnings,
        unused_after=settings.disable_unused_after,
        interval=settings.lifecycle_interval,
    )
    context = build_context(settings, manager, deliverer, reminders)
    # The catalogue is public and always served: problem types may point at it.
    pages = build_outcome_pages(settings.public_url)
    mounts: dict[str, ASGIApp] = dict.fromkeys(MOUNTS, pages)
    if settings.ui:
        from keyturn.ui import MOUNT, build_dashboard

        mounts[MOUNT] = build_dashboard(
            settings, context.manager, Redactor(settings.query_params)
        )
    if settings.portal:
        from keyturn.portal import PATH
        from keyturn.ui.portal import build_portal

        mounts[PATH] = build_portal(settings, context.manager)
    access = None
    if settings.access_log:
        access = AccessLines(Redactor(settings.query_params), log_stream or sys.stdout)
    return KeyturnService(context, mounts, access)
