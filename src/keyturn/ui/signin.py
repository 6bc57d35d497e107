"""Sign in with an admin key, sign out, and the dashboard's front door.

The pasted key goes through the manager's ``verify_key``, the path the verify API takes, so
a revoked or mistyped key is refused here with the same catalogue answer it would get
anywhere else. A key that verifies must also hold at least one dashboard scope. The key is
never put back into the page, the cookie or the log; the session keeps its id and hash.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn._throttle import Throttle as SignInThrottle
from keyturn.outcomes import lookup
from keyturn.ui import csrf
from keyturn.ui.admin import Admin, current_admin, may_sign_in
from keyturn.ui.app import Dashboard, safe_next
from keyturn.ui.forms import Form, FormError, read_form
from keyturn.ui.render import MOUNT
from keyturn.ui.sessions import Session
from keyturn.verifier import Decision

MAX_KEY_LENGTH = 1024
# The sign-in form holds a CSRF token, a key and a page to go back to: 4 KiB is plenty.
SIGN_IN_BODY = 4 * 1024
_EXPIRED = "The sign-in form had expired or did not come from this page. Paste the key again."


def home_of(admin: Admin) -> str:
    """The first page this admin may see."""
    if admin.can_read:
        return f"{MOUNT}/keys"
    if admin.can_verify:
        return f"{MOUNT}/check"
    if admin.can_audit:
        return f"{MOUNT}/audit"
    return f"{MOUNT}/roles"


class SignIn:
    """The sign-in and sign-out pages, and the dashboard's front door."""

    def __init__(self, ui: Dashboard) -> None:
        self.ui = ui
        self.throttle = SignInThrottle(proxies=ui.manager.sync.verifier.proxies)

    async def home(self, request: Request) -> Response:
        session = self.ui.session_of(request)
        admin = await current_admin(
            self.ui.sessions, self.ui.manager, session, self.ui.client_of(request)
        )
        if admin is None:
            return RedirectResponse(f"{MOUNT}/login", status_code=303)
        return RedirectResponse(home_of(admin), status_code=303)

    def form_page(
        self,
        request: Request,
        session: Session | None,
        status: int = 200,
        error: str = "",
        hint: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The sign-in form, with a fresh anonymous session if there is none to use."""
        if session is None or session.signed_in:
            session = self.ui.sessions.anonymous()
        target = request.query_params.get("next", "")
        response = self.ui.render(
            "login.html",
            session,
            status=status,
            headers=headers,
            error=error,
            hint=hint,
            next=target if safe_next(target) else "",
            signed_out="signed_out" in request.query_params,
        )
        return self.ui.set_cookie(response, request, session)

    def throttled(self, request: Request, session: Session, seconds: int) -> Response:
        entry = lookup("signin_throttled")
        return self.form_page(
            request,
            session,
            entry.status,
            f"{entry.title}: wait {seconds} second{'' if seconds == 1 else 's'}, then try again.",
            entry.fix,
            headers={"retry-after": str(seconds)},
        )

    async def show(self, request: Request) -> Response:
        session = self.ui.session_of(request)
        admin = await current_admin(
            self.ui.sessions, self.ui.manager, session, self.ui.client_of(request)
        )
        if admin is not None:
            return RedirectResponse(home_of(admin), status_code=303)
        return self.form_page(request, session)

    async def submit(self, request: Request) -> Response:
        # The session (the one the form was served with) first: without it the body, which
        # nobody has vouched for yet, is not even read.
        session = self.ui.session_of(request)
        if session is None:
            return self.form_page(request, None, 403, _EXPIRED)
        client = self.throttle.client(
            request.client.host if request.client else None, request.headers.raw
        )
        wait = self.throttle.wait(client)
        if wait:
            return self.throttled(request, session, wait)
        try:
            form = await read_form(request, SIGN_IN_BODY, self.ui.settings.read_timeout)
        except FormError as exc:
            return self.form_page(request, None, exc.status, exc.message)
        if not csrf.token_matches(session.csrf, form.get(csrf.FIELD)):
            return self.form_page(request, None, 403, _EXPIRED)
        answer = await self.judge(request, session, form)
        if answer.status_code >= 400:  # a failed sign-in counts against the client
            self.throttle.failed(client)
        return answer

    async def judge(self, request: Request, session: Session, form: Form) -> Response:
        key = form.get("key")
        if not key:
            return self.form_page(request, session, 400, "Paste an admin key to sign in.")
        if len(key) > MAX_KEY_LENGTH:
            return self.form_page(request, session, 400, "That is far longer than any key.")
        decision: Decision = await self.ui.manager.verify_key(key, ip=self.ui.client_of(request))
        record = decision.key
        if not decision.ok or record is None:
            redact = self.ui.redactor.text
            return self.form_page(
                request,
                session,
                decision.outcome.status or 401,
                f"{decision.outcome.title}: {redact(decision.detail)}",
                redact(decision.hint),
            )
        if not may_sign_in(record):
            return self.form_page(
                request,
                session,
                403,
                f"The key {record.masked} is valid but holds none of the dashboard's scopes "
                "(keys:read, keys:write, keys:verify, audit:read, or *).",
            )
        signed_in = self.ui.sessions.sign_in(session, record.id, record.key_hash)
        target = form.get("next")
        admin = Admin(signed_in, record)
        location = target if safe_next(target) else home_of(admin)
        response = RedirectResponse(location, status_code=303)
        return self.ui.set_cookie(response, request, signed_in)

    async def sign_out(self, request: Request) -> Response:
        session = self.ui.session_of(request)
        if session is not None:
            try:
                form = await read_form(request, SIGN_IN_BODY, self.ui.settings.read_timeout)
            except FormError as exc:
                return self.ui.error(
                    session, None, exc.status, "The form could not be read", exc.message
                )
            if not csrf.token_matches(session.csrf, form.get(csrf.FIELD)):
                return self.ui.error(
                    session,
                    None,
                    403,
                    "Form refused",
                    "The sign-out form did not carry this session's security token. "
                    "You are still signed in.",
                )
            self.ui.sessions.drop(session.id)
        response = RedirectResponse(f"{MOUNT}/login?signed_out", status_code=303)
        return self.ui.clear_cookie(response, request)


def routes(ui: Dashboard) -> list[BaseRoute]:
    pages = SignIn(ui)
    return [
        Route(MOUNT, pages.home, methods=["GET"]),
        Route(f"{MOUNT}/", pages.home, methods=["GET"]),
        Route(f"{MOUNT}/login", pages.show, methods=["GET"]),
        Route(f"{MOUNT}/login", pages.submit, methods=["POST"]),
        Route(f"{MOUNT}/logout", pages.sign_out, methods=["POST"]),
    ]
