"""What every server-rendered face shares: sessions in a cookie of its own path, rendering,
forms with their CSRF check, error pages, security headers and the package's static files.

The operator's dashboard (``keyturn.ui.app``, at ``/ui``) and the customer portal
(``keyturn.ui.portal``, at ``/portal``) are each a ``Site``: the same cookie rules
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS, the path of the site alone, so a
portal session never reaches the dashboard and the other way round), the same CSP, the
same session store with its idle timeout, the same form reader. What differs is who the
visitor is and which gate a page goes through.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from keyturn._asgi import ASGIApp, Message, Receive, Scope, Send
from keyturn._redact import mask_text
from keyturn.config import Settings
from keyturn.errors import KeyturnError, Unavailable
from keyturn.outcomes import CATALOGUE
from keyturn.ui import csrf
from keyturn.ui.forms import Form, FormError, read_form
from keyturn.ui.render import SECURITY_HEADERS, Templates
from keyturn.ui.sessions import Session, SessionStore

FORM_REFUSED = "Form refused"


class Site:
    """A server-rendered face at ``mount``, its sessions in the cookie ``cookie``."""

    error_template = "error.html"

    def __init__(
        self,
        settings: Settings,
        *,
        mount: str,
        cookie: str,
        idle: float,
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.mount = mount
        self.cookie = cookie
        self.sessions = SessionStore(idle)
        self.trust_forwarded_proto = settings.trust_forwarded_proto
        self.templates = Templates({"idle": duration_text(idle), **(defaults or {})}, mount)

    # -- sessions and cookies -------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(self.cookie))

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
            self.cookie,
            session.id,
            path=self.mount,
            httponly=True,
            samesite="strict",
            secure=self.is_https(request),
        )
        return response

    def clear_cookie(self, response: Response, request: Request) -> Response:
        response.delete_cookie(
            self.cookie,
            path=self.mount,
            httponly=True,
            samesite="strict",
            secure=self.is_https(request),
        )
        return response

    # -- rendering --------------------------------------------------------------------------

    def show(
        self,
        name: str,
        session: Session | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """``name`` rendered with the session's CSRF token and flash message. A form's
        errors quote what was typed, which may be a key pasted in the wrong field: masked.
        (Its values are masked by whoever knows which were typed: ``keyturn.ui.echo``.)"""
        if context.get("errors"):
            context["errors"] = {f: mask_text(str(m)) for f, m in context["errors"].items()}
        values = {
            "csrf": session.csrf if session is not None else "",
            "flash": session.take_flash() if session is not None else None,
            "nav": "",
            **context,
        }
        return self.templates.response(name, values, status, headers)

    def problem(
        self,
        session: Session | None,
        status: int,
        title: str,
        message: str,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        message = mask_text(message)  # it may quote an id or value that was a key
        return self.show(
            self.error_template, session, status, headers, title=title, message=message, **context
        )

    def failure(self, session: Session | None, exc: KeyturnError, **context: Any) -> Response:
        """Every error of the admin layer and the store, as one page: the catalogue's title,
        the error's own words, its status; an outage says when to retry."""
        headers = None
        if isinstance(exc, Unavailable):
            headers = {"retry-after": str(exc.retry_after)}
        title = CATALOGUE[exc.code].title
        return self.problem(session, exc.status, title, f"{exc.message}.", headers, **context)

    # -- forms ------------------------------------------------------------------------------

    async def posted_form(
        self, request: Request, session: Session, **context: Any
    ) -> Form | Response:
        """The posted form if it carries ``session``'s CSRF token (in the form or the
        ``X-CSRF-Token`` header); otherwise the error page to answer with (rendered with
        ``context``)."""
        try:
            form = await read_form(request, self.settings.max_body_size, self.settings.read_timeout)
        except FormError as exc:
            return self.problem(
                session, exc.status, "The form could not be read", exc.message, **context
            )
        given = form.get(csrf.FIELD) or request.headers.get(csrf.HEADER)
        if not csrf.token_matches(session.csrf, given):
            return self.problem(
                session,
                403,
                FORM_REFUSED,
                "This form did not carry this session's security token (CSRF), so it may "
                "not have come from this page. Nothing was changed. Reload the page and try "
                "again.",
                **context,
            )
        return form


def duration_text(seconds: float) -> str:
    """``900`` -> ``15 minutes``; under two minutes in seconds."""
    if seconds < 120:
        whole = round(seconds)
        return f"{whole} second{'' if whole == 1 else 's'}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes"


class PackageFiles(StaticFiles):
    """The package's static files. Their URLs carry the version (``render.static_url``),
    so browsers may keep them until the next release."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def package_files() -> PackageFiles:
    return PackageFiles(packages=[("keyturn.ui", "static")])


class SecurityHeaders:
    """Adds the security headers (``render.security_headers``) to every response of the
    wrapped app, static files too."""

    def __init__(
        self, app: ASGIApp, headers: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS
    ) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, sending)
