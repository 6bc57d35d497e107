"""Run the service on uvicorn, with the settings that ``bench/forward_auth.py`` reuses.

uvicorn's own access log stays off: the service writes its own, structured and masked.
On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
``shutdown_timeout`` seconds), then runs the lifespan shutdown, which flushes pending
last-used times to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import resource
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from keyturn._asgi import ASGIApp
from keyturn._redact import RedactingFormatter, redact_handlers
from keyturn.config import Settings
from keyturn.service.app import KeyturnService
from keyturn.service.connections import Edge, guarded

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Descriptors kept for everything but client connections: the listening socket, the event
# loop, the store's files or connections (one set per worker thread), Redis, the logs.
RESERVED_DESCRIPTORS = 128
# What is left of a body answered before it was read (a refusal, a 413, /auth) is read and
# dropped up to this much, so that the client, still sending, gets to read the answer.
DRAIN_BYTES = 1024 * 1024
_log = logging.getLogger("keyturn.service")


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    edge = Edge(
        connection_ceiling(settings.max_connections),
        settings.read_timeout,
        drain=max(settings.max_body_size, DRAIN_BYTES),
        public_url=settings.public_url,
    )
    # The service's /auth, answered in the protocol when it can be (service.direct_auth).
    direct = app.forward_auth.answer_now if isinstance(app, KeyturnService) else None
    return uvicorn.Config(
        app,
        http=guarded(edge, _protocol(settings.http), direct=direct),
        loop=_LOOPS[settings.http],
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout) or None,
    )


# The event loop of each HTTP stack (``Settings.http``): h11 is what `pip install uvicorn`
# runs, on asyncio; httptools comes with uvloop in `uvicorn[standard]`.
_LOOPS = {"auto": "auto", "h11": "asyncio", "httptools": "uvloop"}


def _protocol(http: str) -> type[asyncio.Protocol] | None:
    """uvicorn's HTTP protocol class for ``Settings.http`` (``None``: the fastest
    installed, as uvicorn picks it)."""
    if http == "h11":
        return H11Protocol
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # needs httptools

        return HttpToolsProtocol
    return None


def connection_ceiling(wanted: int) -> int:
    """How many client connections this process can hold: ``wanted``, if the descriptor
    limit allows it. The soft limit is raised toward what that needs (as far as the hard
    limit lets an unprivileged process); beyond the limit ``accept`` would fail and the
    server would stop answering anyone, so the ceiling keeps ``RESERVED_DESCRIPTORS`` free."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    ceiling = max(1, soft - RESERVED_DESCRIPTORS)
    _log.warning(
        "max_connections lowered from %d to %d: the descriptor limit is %d "
        "(raise it with ulimit -n or systemd's LimitNOFILE)",
        wanted, ceiling, soft,
    )
    return ceiling


def warn_of_blind_trust(trusted_proxies: tuple[str, ...]) -> None:
    """Say so when ``trusted_proxies`` believes every peer (a ``/0``): then any client can
    name any address, for keys restricted by address and for sign-in limits alike. Not
    refused: a process reachable only through its proxy (a container behind an ingress)
    may mean it."""
    everyone = [network for network in trusted_proxies if network.endswith("/0")]
    if everyone:
        _log.warning(
            "trusted_proxies lists %s: every peer's X-Forwarded-For and X-Real-IP are "
            "believed, so any client that reaches this server directly can name any "
            "address (allowed_ips, sign-in limits); list your proxies' addresses instead",
            ", ".join(everyone),
        )


def configure_logging(settings: Settings) -> None:
    """The service's own messages to stderr (access log lines go to stdout, unlogged)."""
    service = logging.getLogger("keyturn.service")
    handler = _handler(sys.stderr, "%(levelname)s:     %(message)s")
    handler.setFormatter(RedactingFormatter(handler.formatter))
    service.handlers[:] = [handler]
    service.setLevel(settings.log_level.upper())
    service.propagate = False


def _handler(stream: TextIO, fmt: str) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    return handler


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, without re-raising the signal once the graceful stop is done: a
        server that stopped cleanly on SIGTERM exits 0, which orchestrators read as success
        (uvicorn re-raises it, so the process would die of it after all, with 143)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(app: ASGIApp, settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests and flush.

    Everything made so far (the imported frameworks, the app) lives as long as the process,
    so it is moved out of the garbage collector's sight: otherwise each full collection
    walks it all again, a cost that lands on requests.
    """
    configure_logging(settings)
    warn_of_blind_trust(settings.trusted_proxies)
    config = uvicorn_config(app, settings)
    # uvicorn's own lines (errors, tracebacks) are masked like the service's.
    redact_handlers("uvicorn", "uvicorn.error", "uvicorn.access")
    gc.collect()
    gc.freeze()
    _Server(config).run()
