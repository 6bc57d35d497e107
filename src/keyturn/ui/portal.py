"""The customer portal at ``/portal``: an owner manages its own keys (docs/portal.md).

A ``Site`` like the dashboard (same CSP, CSRF, cookie rules and session store, its cookie
on the path ``/portal``), entered not by pasting a key but by a single-use link
(``keyturn.portal``): ``/portal/enter?token=…`` redeems it once and starts a session that
remembers the owner and its policy, answering with a page that moves on to ``/portal``
itself, so the ``SameSite=Strict`` cookie is sent even when the link came from another
site. Every page goes through ``Portal.page``: find the session, check the CSRF token of a
post, act as the owner (``OwnerPolicy.actor``: the admin layer confines it to the owner's
keys, so another owner's key id is a 404 here as everywhere), and turn the admin layer's
errors into error pages. The pages themselves are in ``keyturn.ui.portal_pages``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from keyturn._asgi import ASGIApp
from keyturn._throttle import Throttle
from keyturn.actor import Actor
from keyturn.config import Settings
from keyturn.errors import KeyturnError
from keyturn.manager import AsyncKeyManager
from keyturn.portal import PATH, AsyncPortalLinks, PortalLink, PortalLinks, link_hash
from keyturn.ui.forms import Form
from keyturn.ui.render import security_headers
from keyturn.ui.sessions import Session
from keyturn.ui.site import SecurityHeaders, Site, package_files

COOKIE = "keyturn_portal"
MAX_TOKEN_LENGTH = 100


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in portal visitor: its session and what its link opened."""

    session: Session
    link: PortalLink
    # The owner under its policy, within the key that made the link (``PortalLinks.actor``).
    actor: Actor

    @property
    def owner(self) -> str:
        return self.link.owner


PortalPage = Callable[["Portal", Request, Visitor, Form | None], Awaitable[Response]]


class Portal(Site):
    """What the portal's pages share: the manager's admin layer, the links, the branding."""

    error_template = "portal/error.html"

    def __init__(self, settings: Settings, manager: AsyncKeyManager) -> None:
        super().__init__(
            settings,
            mount=PATH,
            cookie=COOKIE,
            idle=settings.portal_idle_timeout,
            defaults={
                "layout": "portal/base.html",
                "home_url": f"{PATH}/",
                "home_name": "Your keys",
                "brand": settings.portal_title,
                "logo": settings.portal_logo_url,
            },
        )
        self.manager = manager
        self.keys = manager.admin
        self.links = AsyncPortalLinks(PortalLinks(manager.store))
        self.throttle = Throttle(proxies=manager.sync.verifier.proxies)

    async def visitor_of(self, request: Request) -> Visitor | None:
        """The signed-in visitor; ``None`` without a session, or once the key that made its
        link no longer works (the session is ended then)."""
        session = self.session_of(request)
        if session is None or not isinstance(session.data, PortalLink):
            return None
        actor = await self.links.actor(session.data)
        if actor is None:
            self.sessions.drop(session.id)
            return None
        return Visitor(session, session.data, actor)

    def render(
        self,
        name: str,
        visitor: Visitor | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        session = visitor.session if visitor is not None else None
        return self.show(name, session, status, headers, visitor=visitor, **context)

    def page(self, handler: PortalPage) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the portal session, CSRF (on posts) and error pages."""

        async def endpoint(request: Request) -> Response:
            visitor = await self.visitor_of(request)
            if visitor is None:
                return self.ended(request)
            form = None
            if request.method == "POST":
                posted = await self.posted_form(request, visitor.session, visitor=visitor)
                if isinstance(posted, Response):
                    return posted
                form = posted
            try:
                return await handler(self, request, visitor, form)
            except KeyturnError as exc:
                return self.failure(visitor.session, exc, visitor=visitor)

        return endpoint

    def ended(self, request: Request) -> Response:
        response = self.problem(
            None,
            401,
            "Your session has ended",
            "This portal session has ended (it ends after a while without activity) or was "
            "never opened here. Go back to the application you came from and open the key "
            "portal from there again.",
            visitor=None,
        )
        return self.clear_cookie(response, request)

    # -- entering and leaving ---------------------------------------------------------------

    async def enter(self, request: Request) -> Response:
        """Redeem the link once and start a session for its owner (a new session id and
        CSRF token: nothing planted before counts after)."""
        client = self.throttle.client(
            request.client.host if request.client else None, request.headers.raw
        )
        wait = self.throttle.wait(client)
        if wait:
            return self.problem(
                None,
                429,
                "Too many links that did not work",
                f"Wait {wait} seconds, then open the link again.",
                {"retry-after": str(wait)},
                visitor=None,
            )
        token = request.query_params.get("token", "")[:MAX_TOKEN_LENGTH]
        link = await self.links.redeem(token)
        actor = await self.links.actor(link) if link is not None else None
        if link is None or actor is None:
            self.throttle.failed(client)
            return self.problem(
                None,
                410,
                "This link does not work",
                "A portal link works once, for a short while: this one was used already, "
                "has expired, was made by a key that no longer works, or is not a portal "
                "link. Go back to the application you came "
                "from and open the key portal from there again.",
                visitor=None,
            )
        session = self.sessions.sign_in(
            self.session_of(request), f"owner:{link.owner}", link_hash(token), link
        )
        # Not a redirect: a link opened from another site (the host app's redirect, a click)
        # is a cross-site navigation, and its redirects too, so the browser would withhold
        # the new SameSite=Strict cookie from them. This page moves on from the portal's own
        # site (a refresh, or the link), and the cookie goes along.
        response = self.show("portal/enter.html", None, visitor=Visitor(session, link, actor))
        return self.set_cookie(response, request, session)

    async def leave(self, request: Request) -> Response:
        visitor = await self.visitor_of(request)
        if visitor is None:
            return self.ended(request)
        posted = await self.posted_form(request, visitor.session, visitor=visitor)
        if isinstance(posted, Response):
            return posted
        self.sessions.drop(visitor.session.id)
        target = visitor.link.return_url
        response = (
            RedirectResponse(target, status_code=303)
            if target
            else self.problem(
                None,
                200,
                "You have left the key portal",
                "Your session has ended; open the portal again from your account.",
                visitor=None,
            )
        )
        return self.clear_cookie(response, request)


def logo_origins(settings: Settings) -> tuple[str, ...]:
    """The origin of the portal's logo, which its CSP must let images come from."""
    if not settings.portal_logo_url:
        return ()
    parts = urlsplit(settings.portal_logo_url)
    return (f"{parts.scheme}://{parts.netloc}",)


def build_portal(settings: Settings, manager: AsyncKeyManager) -> ASGIApp:
    """The portal app; it answers paths under ``/portal`` (mounted by ``keyturn.app``)."""
    from keyturn.ui import portal_pages

    portal = Portal(settings, manager)

    async def not_found(request: Request, exc: Exception) -> Response:
        try:
            visitor = await portal.visitor_of(request)
        except KeyturnError:  # the store down: the page without the visitor's navigation
            visitor = None
        session = visitor.session if visitor is not None else None
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            return portal.problem(
                session, 405, "Not here", "This address does not take that method.",
                visitor=visitor,
            )
        return portal.problem(session, 404, "Not found", "There is no page here.", visitor=visitor)

    async def refused(request: Request, exc: Exception) -> Response:
        """A ``KeyturnError`` outside the page gate (the store down while a link is
        redeemed): the portal's error page, never a 500."""
        assert isinstance(exc, KeyturnError)
        return portal.failure(None, exc, visitor=None)

    routes: list[BaseRoute] = [
        Route(f"{PATH}/enter", portal.enter, methods=["GET"]),
        Route(f"{PATH}/logout", portal.leave, methods=["POST"]),
        *portal_pages.routes(portal),
        Mount(f"{PATH}/static", app=package_files()),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found, KeyturnError: refused},
    )
    app.state.portal = portal
    return SecurityHeaders(app, security_headers(logo_origins(settings)))
