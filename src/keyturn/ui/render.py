"""Templates and the headers every dashboard and portal response carries.

Jinja2 with autoescaping on for everything and ``StrictUndefined``, so a missing variable is
a bug found in tests rather than an empty cell in production. Templates and static files are
package data (``keyturn/ui/templates``, ``keyturn/ui/static``): nothing is fetched from a CDN
and nothing is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from keyturn import __version__
from keyturn._path_names import segment

MOUNT = "/ui"

# Scripts and styles only from this origin, no inline script or style anywhere, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

def security_headers(image_origins: tuple[str, ...] = ()) -> tuple[tuple[bytes, bytes], ...]:
    """The headers of every response; ``image_origins`` may serve images too (a portal's
    logo)."""
    policy = CONTENT_SECURITY_POLICY
    if image_origins:
        images = " ".join(("img-src 'self' data:", *image_origins))
        policy = policy.replace("img-src 'self' data:", images)
    return (
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    )


SECURITY_HEADERS = security_headers()
# Pages may show a key once, and always show who is signed in: never cache them.
NO_STORE = {"cache-control": "no-store"}


def when(value: datetime | None, empty: str = "—") -> str:
    """A moment as people read it in a table: UTC, to the minute."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(value: datetime | None, empty: str = "—") -> str:
    """The UTC day alone, for tables; the full moment goes in the ``title``."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def static_url(name: str, mount: str = MOUNT) -> str:
    """A static file's URL; the version in the query makes an upgrade refetch it."""
    return f"{mount}/static/{name}?v={__version__}"


def environment(mount: str = MOUNT) -> Environment:
    env = Environment(
        loader=PackageLoader("keyturn.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["day"] = day
    env.filters["iso"] = iso
    env.filters["segment"] = segment  # a free-form name in a path (keyturn._path_names)
    env.filters["segment"] = segment
    env.globals.update(
        static=lambda name: static_url(name, mount), version=__version__, mount=mount
    )
    return env


class Templates:
    def __init__(self, defaults: Mapping[str, Any], mount: str = MOUNT) -> None:
        self.env = environment(mount)
        self.defaults = dict(defaults)

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        return self.env.get_template(name).render({**self.defaults, **context})

    def response(
        self,
        name: str,
        context: Mapping[str, Any],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        return HTMLResponse(
            self.render(name, context), status_code=status, headers={**NO_STORE, **(headers or {})}
        )
