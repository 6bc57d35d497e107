"""Run the service on uvicorn, with the settings that ``bench/forward_auth.py`` reuses.

uvicorn's own access log stays off: the service writes its own, structured and masked.
On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
``shutdown_timeout`` seconds), then runs the lifespan shutdown, which flushes pending
last-used times to the store.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

import uvicorn

from keyturn.config import Settings
from keyturn.service.asgi import ASGIApp

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout) or None,
    )


def configure_logging(settings: Settings) -> None:
    """The service's own messages to stderr (access log lines go to stdout, unlogged)."""
    service = logging.getLogger("keyturn.service")
    service.handlers[:] = [_handler(sys.stderr, "%(levelname)s:     %(message)s")]
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
    config = uvicorn_config(app, settings)
    gc.collect()
    gc.freeze()
    _Server(config).run()
