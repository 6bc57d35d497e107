"""The dashboard as one ASGI app under ``/ui``, and the one gate every page goes through.

Each page is a plain async function ``(dashboard, request, admin, form) -> Response``; the
gate in ``Dashboard.page`` does, in this order and for every page alike: find the session,
re-check its admin key (``keyturn.ui.admin``), read and check the CSRF token of a form post,
check the scope the page needs, and turn the errors a page may raise into error pages:
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
from starlette.staticfiles import StaticFiles

from keyturn._asgi import ASGIApp, Message, Receive, Scope, Send
from keyturn.config import Settings
from keyturn.errors import KeyturnError, Unavailable
from keyturn.manager import AsyncKeyManager
from keyturn.outcomes import CATALOGUE
from keyturn.ui import csrf
from keyturn.ui.admin import Admin, current_admin
from keyturn.ui.diagnose import Diagnostician, Masker
from keyturn.ui.forms import Form, FormError, read_form
from keyturn.ui.render import MOUNT, SECURITY_HEADERS, Templates
from keyturn.ui.sessions import Session, SessionStore

COOKIE = "keyturn_ui"
Page = Callable[["Dashboard", Request, Admin, Form | None], Awaitable[Response]]
_SAFE_NEXT = re.compile(r"/ui/[A-Za-z0-9_\-./?=&%+]*")


class Dashboard:
    """What the pages share: the settings, the manager and its admin layer, the sessions."""

    def __init__(self, settings: Settings, manager: AsyncKeyManager, masker: Masker) -> None:
        self.settings = settings
        self.manager = manager
        self.keys = manager.admin
        self.redactor = masker
        self.diagnostician = Diagnostician(manager, settings.realm, masker)
        idle = settings.ui_idle_timeout
        self.sessions = SessionStore(idle)
        self.trust_forwarded_proto = settings.trust_forwarded_proto
        self.templates = Templates({"idle": duration_text(idle)})

    # -- sessions and cookies -------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def is_https(self, request: Request) -> bool:
        """Served over HTTPS: by the server itself, or (only when configured to trust it)
        according to the proxy's ``X-Forwarded-Proto``."""
        if request.url.scheme == "https":
            return True
        if self.trust_forwarded_proto:
            proto = request.headers.get("x-forwarded-proto", "")
            return proto.split(",")[0].strip().lower() == "https"
        return False

    def set_cookie(self, response: Response, request: Request, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            session.id,
            path=MOUNT,
            httponly=True,
            samesite="strict",
            secure=self.is_https(request),
        )
        return response

    def clear_cookie(self, response: Response, request: Request) -> Response:
        response.delete_cookie(
            COOKIE, path=MOUNT, httponly=True, samesite="strict", secure=self.is_https(request)
        )
        return response

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
        values = {
            "admin": admin,
            "csrf": session.csrf if session is not None else "",
            "flash": session.take_flash() if session is not None else None,
            "nav": "",
            **context,
        }
        return self.templates.response(name, values, status, headers)

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
        return self.render(
            "error.html", session, admin, status, headers, title=title, message=message, **context
        )

    # -- the gate ---------------------------------------------------------------------------

    def page(self, handler: Page, needs: str) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind sign-in, CSRF (on posts), the scope ``needs`` and error pages."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            admin = await current_admin(self.sessions, self.manager, session)
            if admin is None:
                return self.to_sign_in(request)
            form = None
            if request.method == "POST":
                try:
                    form = await read_form(
                        request, self.settings.max_body_size, self.settings.read_timeout
                    )
                except FormError as exc:
                    return self.error(
                        admin.session, admin, exc.status, "The form could not be read", exc.message
                    )
                given = form.get(csrf.FIELD) or request.headers.get(csrf.HEADER)
                if not csrf.token_matches(admin.session.csrf, given):
                    return self.error(
                        admin.session,
                        admin,
                        403,
                        "Form refused",
                        "This form did not carry this session's security token (CSRF), so "
                        "it may not have come from this dashboard. Nothing was changed. "
                        "Reload the page and try again.",
                    )
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
                return await handler(self, request, admin, form)
            except KeyturnError as exc:
                return self.failure(admin, exc)

        return endpoint

    def failure(self, admin: Admin, exc: KeyturnError) -> Response:
        """Every error of the admin layer and the store, as one page: the catalogue's title,
        the error's own words, its status; an outage says when to retry."""
        headers = None
        if isinstance(exc, Unavailable):
            headers = {"retry-after": str(exc.retry_after)}
        title = CATALOGUE[exc.code].title
        message = f"{exc.message}."
        return self.error(admin.session, admin, exc.status, title, message, headers=headers)

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


def duration_text(seconds: float) -> str:
    """``900`` -> ``15 minutes``; under two minutes in seconds."""
    if seconds < 120:
        whole = round(seconds)
        return f"{whole} second{'' if whole == 1 else 's'}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes"


def safe_next(target: str) -> bool:
    """A post-sign-in destination inside the dashboard only (no open redirect)."""
    return bool(_SAFE_NEXT.fullmatch(target)) and "//" not in target and ".." not in target


class PackageFiles(StaticFiles):
    """The package's static files. Their URLs carry the version (``render.static_url``),
    so browsers may keep them until the next release."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response of the wrapped app (static files too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, sending)


def build_dashboard(settings: Settings, manager: AsyncKeyManager, masker: Masker) -> ASGIApp:
    """The dashboard app; it answers paths under ``/ui`` (mounted by ``keyturn.app``)."""
    from keyturn.ui import audit_page, check_page, key_actions, key_pages, signin

    dashboard = Dashboard(settings, manager, masker)

    async def not_found(request: Request, exc: Exception) -> Response:
        session = dashboard.session_of(request)
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            return dashboard.error(
                session, None, 405, "Not here", "This address does not take that method."
            )
        return dashboard.error(session, None, 404, "Not found", "There is no page here.")

    routes: list[BaseRoute] = [
        *signin.routes(dashboard),
        *key_actions.routes(dashboard),
        *key_pages.routes(dashboard),
        *check_page.routes(dashboard),
        *audit_page.routes(dashboard),
        Mount(f"{MOUNT}/static", app=PackageFiles(packages=[("keyturn.ui", "static")])),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.dashboard = dashboard
    return SecurityHeaders(app)
