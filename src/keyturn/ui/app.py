"""The dashboard as one ASGI app under ``/ui``, and the one gate every page goes through.

Each page is a plain async function ``(dashboard, request, admin, form) -> Response``; the
gate in ``Dashboard.page`` does, in this order and for every page alike: find the session,
re-check its admin key (``keyturn.ui.admin``), read and check the CSRF token of a form post,
check the scope the page needs, charge the key for the use as the admin API charges a call
(rate limits, credits: a clear 429 page past them), and turn the errors a page may raise
into error pages:
every ``keyturn.errors.KeyturnError`` from the admin layer, mapped here once - not
permitted (403, the admin layer's own words), an unknown key (404), a state conflict (409),
an invalid value (422), an outage (503) - and a bad form (400/413/415). A page cannot forget
any of these steps because it never does them itself.

The dashboard builds on the core alone: it is handed its settings, the manager (whose admin
layer makes every change) and a masker for what it shows, by ``keyturn.app``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount

from keyturn._asgi import ASGIApp
from keyturn.config import Settings
from keyturn.errors import KeyturnError
from keyturn.keys import url_holds_key
from keyturn.manager import AsyncKeyManager
from keyturn.ui.admin import Admin, charge, current_admin
from keyturn.ui.diagnose import Diagnostician, Masker
from keyturn.ui.forms import Form
from keyturn.ui.render import MOUNT
from keyturn.ui.sessions import Session
from keyturn.ui.site import SecurityHeaders, Site, package_files
from keyturn.verifier import Decision

COOKIE = "keyturn_ui"
Page = Callable[["Dashboard", Request, Admin, Form | None], Awaitable[Response]]
_SAFE_NEXT = re.compile(r"/ui/[A-Za-z0-9_\-./?=&%+]*")


class Dashboard(Site):
    """What the pages share: the settings, the manager and its admin layer, the sessions."""

    def __init__(self, settings: Settings, manager: AsyncKeyManager, masker: Masker) -> None:
        super().__init__(
            settings,
            mount=MOUNT,
            cookie=COOKIE,
            idle=settings.ui_idle_timeout,
            defaults={"layout": "base.html", "home_url": f"{MOUNT}/keys", "home_name": "Keys"},
        )
        self.manager = manager
        self.keys = manager.admin
        self.redactor = masker
        self.diagnostician = Diagnostician(
            manager, settings.realm, masker, settings.public_url
        )

    # -- rendering --------------------------------------------------------------------------

    def render(
        self,
        name: str,
        session: Session | None,
        admin: Admin | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        return self.show(name, session, status, headers, admin=admin, **context)

    def error(
        self,
        session: Session | None,
        admin: Admin | None,
        status: int,
        title: str,
        message: str,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        return self.problem(session, status, title, message, headers, admin=admin, **context)

    # -- the gate ---------------------------------------------------------------------------

    def client_of(self, request: Request) -> str | None:
        """The request's client as every face judges it (the peer, or what a trusted proxy
        names; ``None``: it cannot be told), for keys restricted by address."""
        peer = request.client.host if request.client else None
        found = self.manager.sync.verifier.proxies.client(peer, request.headers.raw)
        return None if found is None else str(found)


    def page(self, handler: Page, needs: str) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind sign-in, CSRF (on posts), the scope ``needs`` and error pages."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            admin = await current_admin(
                self.sessions, self.manager, session, self.client_of(request)
            )
            if admin is None:
                return self.to_sign_in(request)
            form = None
            if request.method == "POST":
                posted = await self.posted_form(request, admin.session, admin=admin)
                if isinstance(posted, Response):
                    return posted
                form = posted
            if not admin.can(needs):
                return self.error(
                    admin.session,
                    admin,
                    403,
                    "Not allowed with this key",
                    f"This needs the scope {needs!r}; the key you signed in with "
                    f"({admin.key.masked}) does not hold it. Nothing was changed.",
                )
            try:
                charged = await charge(self.manager, admin, needs)
                if not charged.ok:
                    return self.used_up(admin, charged, changing=form is not None)
                return await handler(self, request, admin, form)
            except KeyturnError as exc:
                return self.failure(admin.session, exc, admin=admin)

        return endpoint

    def used_up(self, admin: Admin, refused: Decision, *, changing: bool) -> Response:
        """The page for a key whose rate limit or credits refused this request: which ran
        out and when to try again, as the admin API's answer says (and its
        ``Retry-After``). The session stays: the key is still good, only spent for now."""
        quota = refused.quota
        wait = quota.retry_after if quota is not None else None
        message = f"The key you signed in with ({admin.key.masked}): {refused.detail}."
        if refused.hint:
            message += f" {refused.hint[0].upper()}{refused.hint[1:]}."
        if changing:
            message += " Nothing was changed."
        return self.error(
            admin.session,
            admin,
            refused.outcome.status,
            refused.outcome.title,
            message,
            {"retry-after": str(wait)} if wait is not None else None,
        )

    def to_sign_in(self, request: Request) -> Response:
        """Back to the sign-in page, remembering where the visitor was going."""
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        location = f"{MOUNT}/login"
        if request.method == "GET" and safe_next(target) and target != f"{MOUNT}/":
            location += "?next=" + quote(target, safe="/")
        if request.headers.get("hx-request"):
            # htmx follows redirects inside its request; this makes it load the whole page.
            response: Response = Response(status_code=200, headers={"hx-redirect": location})
        else:
            response = RedirectResponse(location, status_code=303)
        return self.clear_cookie(response, request)


def safe_next(target: str) -> bool:
    """A post-sign-in destination inside the dashboard only (no open redirect), and none
    holding a key (a key pasted into the address would be sent back in ``Location`` and
    the sign-in page)."""
    return (
        bool(_SAFE_NEXT.fullmatch(target))
        and "//" not in target
        and ".." not in target
        and not url_holds_key(target)
    )


def build_dashboard(settings: Settings, manager: AsyncKeyManager, masker: Masker) -> ASGIApp:
    """The dashboard app; it answers paths under ``/ui`` (mounted by ``keyturn.app``)."""
    from keyturn.ui import (
        audit_page,
        canary_page,
        check_page,
        key_actions,
        key_pages,
        owner_pages,
        role_pages,
        signin,
        verifications_page,
        webhook_pages,
    )

    dashboard = Dashboard(settings, manager, masker)

    async def not_found(request: Request, exc: Exception) -> Response:
        session = dashboard.session_of(request)
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            return dashboard.error(
                session, None, 405, "Not here", "This address does not take that method."
            )
        return dashboard.error(session, None, 404, "Not found", "There is no page here.")

    async def refused(request: Request, exc: Exception) -> Response:
        """A ``KeyturnError`` outside the page gate (the store down while a session or a
        sign-in is checked): the gate's error page, never a 500."""
        assert isinstance(exc, KeyturnError)
        return dashboard.failure(dashboard.session_of(request), exc, admin=None)

    routes: list[BaseRoute] = [
        *signin.routes(dashboard),
        *key_actions.routes(dashboard),
        *key_pages.routes(dashboard),
        *owner_pages.routes(dashboard),
        *role_pages.routes(dashboard),
        *webhook_pages.routes(dashboard),
        *canary_page.routes(dashboard),
        *verifications_page.routes(dashboard),
        *check_page.routes(dashboard),
        *audit_page.routes(dashboard),
        Mount(f"{MOUNT}/static", app=package_files()),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found, KeyturnError: refused},
    )
    app.state.dashboard = dashboard
    return SecurityHeaders(app)
