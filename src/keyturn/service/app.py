"""The service as one ASGI app: ``/auth`` and the probes first, raw; the API after.

Dispatch is a path comparison, so a forward-auth request never enters a framework's router
or middleware stack, nor the access log's middleware (``/auth`` writes its own line). Apps
mounted beside the service (the dashboard at ``/ui``, mounted by ``keyturn.app``, which
composes the two packages so that neither imports the other) come next, and everything else
goes to the FastAPI app; both route on the path with encoded slashes kept inside their
segment (``keyturn._path_names``: free-form names like owners). The lifespan is handled
here: on startup the webhook worker and the time-driven events start; on shutdown they stop
and the manager is closed, which flushes the batched last-used times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from keyturn._asgi import ASGIApp, Receive, Scope, Send
from keyturn._path_names import needs_routing_path, routing_path
from keyturn.service import probes
from keyturn.service.access_log import AccessLines, AccessLog
from keyturn.service.api import build_api
from keyturn.service.context import ServiceContext
from keyturn.service.forward_auth import ForwardAuth

Probe = Callable[[ServiceContext, Scope, Receive, Send], Awaitable[None]]
_PROBES: dict[str, Probe] = {
    "/healthz": probes.healthz,
    "/readyz": probes.readyz,
    "/metrics": probes.metrics,
}
_log = logging.getLogger("keyturn.service")


class KeyturnService:
    def __init__(
        self,
        context: ServiceContext,
        mounts: Mapping[str, ASGIApp] | None = None,
        access: AccessLines | None = None,
    ) -> None:
        """``mounts``: apps answering a path prefix (``"/ui"``) and everything under it.
        ``access``: the access log, if it is on."""
        self.context = context
        self.forward_auth = ForwardAuth(context.manager, context.settings, context.metrics, access)
        self.api = build_api(context)
        self.mounts = tuple((mounts or {}).items())
        self.access = access
        self._others: ASGIApp = self._route if access is None else AccessLog(self._route, access)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == "/auth" or path.startswith("/auth/"):
                await self.forward_auth(scope, receive, send)
                return
            await self._others(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: nothing here speaks them
            await self.api(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every HTTP request but ``/auth``'s: the probes, the mounted apps, the API."""
        path: str = scope["path"]
        probe = _PROBES.get(path)
        if probe is not None:
            if scope["method"] not in ("GET", "HEAD"):
                probe = probes.not_allowed
            await probe(self.context, scope, receive, send)
            return
        if needs_routing_path(scope.get("raw_path")):  # a name holding a slash
            scope = {**scope, "path": routing_path(scope["raw_path"])}
            path = scope["path"]
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        await self.api(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for worker in self.context.background():
                    worker.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for worker in self.context.background():
                    await asyncio.to_thread(worker.close)
                if self.access is not None:  # the last lines, before the server exits
                    self.access.flush()
                try:
                    await self.context.manager.aclose()
                except Exception as exc:  # report, but let the server finish stopping
                    _log.error("closing the key store failed: %s", exc)
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return
