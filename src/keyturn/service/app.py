"""The service as one ASGI app: ``/auth`` and the probes first, raw; the API after.

Dispatch is a path comparison, so a forward-auth request never enters a framework's router
or middleware stack. Everything else goes to the FastAPI app. The lifespan is handled here:
on shutdown the manager is closed, which flushes the batched last-used times.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from keyturn.config import Settings
from keyturn.manager import KeyManager
from keyturn.service import probes
from keyturn.service.access_log import AccessLog
from keyturn.service.api import build_api
from keyturn.service.asgi import ASGIApp, Receive, Scope, Send
from keyturn.service.context import ServiceContext, build_context
from keyturn.service.forward_auth import ForwardAuth
from keyturn.service.redact import Redactor
from keyturn.ui import MOUNT as UI_MOUNT
from keyturn.ui import build_dashboard

Probe = Callable[[ServiceContext, Scope, Receive, Send], Awaitable[None]]
_PROBES: dict[str, Probe] = {
    "/healthz": probes.healthz,
    "/readyz": probes.readyz,
    "/metrics": probes.metrics,
}
_log = logging.getLogger("keyturn.service")


class KeyturnService:
    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.forward_auth = ForwardAuth(context.manager, context.settings, context.metrics)
        self.api = build_api(context)
        # The web dashboard (keyturn.ui), unless the settings turn it off.
        self.ui = build_dashboard(context) if context.settings.ui else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == "/auth" or path.startswith("/auth/"):
                await self.forward_auth(scope, receive, send)
                return
            probe = _PROBES.get(path)
            if probe is not None:
                if scope["method"] not in ("GET", "HEAD"):
                    probe = probes.not_allowed
                await probe(self.context, scope, receive, send)
                return
            if self.ui is not None and (path == UI_MOUNT or path.startswith(UI_MOUNT + "/")):
                await self.ui(scope, receive, send)
                return
            await self.api(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: nothing here speaks them
            await self.api(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.context.manager.aclose()
                except Exception as exc:  # report, but let the server finish stopping
                    _log.error("closing the key store failed: %s", exc)
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    settings: Settings | None = None,
    manager: KeyManager | None = None,
    *,
    log_stream: TextIO | None = None,
) -> ASGIApp:
    """The full service for ``settings``, wrapped in the access log (written to
    ``log_stream``, stdout by default) when it is on."""
    settings = settings or Settings()
    service = KeyturnService(build_context(settings, manager))
    if not settings.access_log:
        return service
    return AccessLog(service, Redactor(settings.query_params), log_stream or sys.stdout)
