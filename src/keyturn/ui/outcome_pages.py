"""``GET /outcomes`` and ``/outcomes/{code}``: the outcome catalogue, served.

A refused request's problem ``type`` is the address of its code's page here when the
deployment sets ``public_url`` (RFC 9457 §3.1.1 asks that a type URI, dereferenced, give
documentation), so the person who got the 401 can read what it means and what to do; the
operator's ``keyturn explain`` prints the same entries. Each address answers in three
formats: HTML for browsers (no JavaScript: the search is a plain GET form), JSON and
Markdown, chosen by the ``Accept`` header or a ``.json`` / ``.md`` suffix (a suffix wins, so
a link can name a format). ``?q=`` searches the index with ``keyturn._outcome_search``, the
ranking ``keyturn explain --search`` uses.

Public: no key is needed to read the catalogue, and nothing on these pages depends on who
asks. They carry the dashboard's security headers (its Content-Security-Policy among them)
and their stylesheet; links are relative, so the pages work behind a proxy that serves the
service under a path of its own.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from keyturn import __version__
from keyturn._asgi import ASGIApp
from keyturn._outcome_search import search
from keyturn._redact import mask_text
from keyturn.answer import OUTCOMES_PATH, PROBLEM_JSON, problem, problem_type
from keyturn.outcomes import CATALOGUE, Outcome, render_markdown, spelled
from keyturn.ui.render import Templates
from keyturn.ui.site import SecurityHeaders, package_files

# The addresses the service hands to this app (keyturn.app mounts each).
MOUNTS = (OUTCOMES_PATH, f"{OUTCOMES_PATH}.json", f"{OUTCOMES_PATH}.md")
MEDIA = {"html": "text/html", "json": "application/json", "md": "text/markdown"}
# The same for everyone and changed only by an upgrade: caches may keep a page a while.
_CACHE = {"cache-control": "public, max-age=300", "vary": "Accept"}
_KINDS = {
    "outcome": "Answer of a key check",
    "problem": "Answer of the service about a request (not about the key)",
    "finding": "Finding of keyturn doctor or keyturn scan",
}
_GROUPS = (
    (
        "outcome",
        "Key checks",
        "What an API protected by keyturn answers about the key a request carried.",
    ),
    (
        "problem",
        "Requests and the service",
        "Answers about the request itself, a change "
        "to a key, or a part of the service that does not answer.",
    ),
    (
        "finding",
        "Doctor and scan findings",
        "What keyturn doctor finds about a key and how "
        "it was sent, and what keyturn scan finds in a repository.",
    ),
)
_CODE_SPAN = re.compile(r"`([^`]+)`")


def inline_code(text: str) -> Markup:
    """The catalogue's prose with its `code spans` as <code>, everything else escaped."""
    parts = _CODE_SPAN.split(text)  # prose, code, prose, code, ..., prose
    code = Markup("<code>{}</code>")
    return Markup("").join(code.format(p) if i % 2 else escape(p) for i, p in enumerate(parts))


def negotiate(accept: str | None) -> str | None:
    """The format an ``Accept`` header prefers (HTML when it names none or anything); None
    when it accepts none of the three."""
    if not accept or not accept.strip():
        return "html"
    best, best_q = None, 0.0
    for item in accept.split(","):
        media, *params = (p.strip().lower() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        chosen = _format_of(media)
        if chosen and 0 < q <= 1 and q > best_q:  # at equal q, the first listed
            best, best_q = chosen, q
    return best


def _format_of(media: str) -> str | None:
    if media in ("text/html", "application/xhtml+xml", "*/*", "text/*"):
        return "html"
    if media in ("application/json", "application/problem+json", "application/*"):
        return "json"
    if media in ("text/markdown", "text/x-markdown"):
        return "md"
    return None


class OutcomePages:
    """The catalogue's pages for one deployment (its ``public_url`` names the types)."""

    def __init__(self, public_url: str | None) -> None:
        self.public_url = public_url
        self.templates = Templates(
            {"admin": None, "csrf": "", "flash": None, "nav": "", "idle": ""}
        )
        self.templates.env.filters["inline_code"] = inline_code

    # -- the two kinds of page --------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        path = request.url.path
        fmt = self._format(
            request, path.rpartition(".")[2] if path.endswith((".json", ".md")) else None
        )
        if fmt is None:
            return self._not_acceptable()
        query = mask_text(request.query_params.get("q", "").strip()[:200])
        entries = search(query) if query else list(CATALOGUE.values())
        if fmt == "json":
            return self._json([self._entry(e) for e in entries])
        base = "" if path.endswith("/") else "outcomes/"
        if fmt == "md":
            return self._markdown(
                "# Outcome catalogue\n\n"
                + "\n\n".join(render_markdown(e, lambda c: f"{base}{c}.md") for e in entries)
            )
        return self._html("outcomes.html", base, entries=entries, query=query, groups=_GROUPS)

    async def entry(self, request: Request) -> Response:
        name = request.path_params["name"]
        stem, dot, suffix = name.rpartition(".")
        suffix = suffix.lower() if dot and suffix.lower() in MEDIA else None
        if suffix is None:
            stem = name
        fmt = self._format(request, suffix)
        if fmt is None:
            return self._not_acceptable()
        code = spelled(stem)
        outcome = CATALOGUE.get(code)
        if outcome is not None and code != stem:  # KEY_EXPIRED: the one address of a code
            return RedirectResponse(code + (f".{suffix}" if suffix else ""), 308, headers=_CACHE)
        if outcome is None:
            return self._missing(stem, fmt)
        if fmt == "json":
            return self._json(self._entry(outcome))
        if fmt == "md":
            return self._markdown(render_markdown(outcome, lambda c: f"{c}.md"))
        return self._html(
            "outcome.html",
            "",
            entry=outcome,
            type=problem_type(code, self.public_url),
            kinds=_KINDS,
            catalogue=CATALOGUE,
        )

    # -- formats ------------------------------------------------------------------------------

    def _format(self, request: Request, suffix: str | None) -> str | None:
        return suffix or negotiate(request.headers.get("accept"))

    def _entry(self, outcome: Outcome) -> dict[str, Any]:
        """An entry as JSON: ``keyturn explain --format json``'s fields and its ``type``."""
        return {**outcome.as_dict(), "type": problem_type(outcome.code, self.public_url)}

    def _json(self, data: object, status: int = 200, media: str = MEDIA["json"]) -> Response:
        return Response(json.dumps(data, indent=2) + "\n", status, _CACHE, media_type=media)

    def _markdown(self, text: str, status: int = 200) -> Response:
        return Response(text + "\n", status, _CACHE, media_type="text/markdown; charset=utf-8")

    def _html(self, template: str, base: str, status: int = 200, **context: Any) -> Response:
        """``base``: the way from this page's address to the entries' (relative links)."""
        index = f"{base}../outcomes" if base else "../outcomes"
        shown = (self.public_url or "").rstrip("/") + OUTCOMES_PATH
        return self.templates.response(
            template,
            {
                "index": index,
                "shown": shown,
                "entry_href": _entry_href(base),
                "static": lambda name: f"{base}static/{name}?v={__version__}",
                **context,
            },
            status,
            _CACHE,
        )

    def _missing(self, name: str, fmt: str) -> Response:
        name = mask_text(name)  # a key pasted as a code is not shown back
        near = [CATALOGUE[c] for c in difflib.get_close_matches(name.lower(), CATALOGUE, n=3)]
        near += [e for e in search(name)[:3] if e not in near]
        detail = f"the catalogue has no entry {name[:100]!r}"
        if fmt == "html":
            return self._html("outcome_missing.html", "", 404, name=name[:100], near=near[:3])
        if fmt == "md":
            return self._markdown(f"# No such code\n\n{detail}.", 404)
        body = problem(
            "not_found", detail, public_url=self.public_url, did_you_mean=[e.code for e in near[:3]]
        )
        return self._json(body, 404, PROBLEM_JSON)

    def _not_acceptable(self) -> Response:
        body = {
            "type": "about:blank",
            "title": "Not Acceptable",
            "status": 406,
            "detail": "the catalogue is served as " + ", ".join(MEDIA.values()),
        }
        return Response(json.dumps(body), 406, _CACHE, media_type=PROBLEM_JSON)


def _entry_href(base: str) -> Callable[[str], str]:
    return lambda code: f"{base}{code}"


def build_outcome_pages(public_url: str | None) -> ASGIApp:
    """The app answering ``MOUNTS`` (and the stylesheet the pages use)."""
    pages = OutcomePages(public_url)
    methods = ["GET", "HEAD"]
    routes = [
        Route(OUTCOMES_PATH, pages.index, methods=methods),
        Route(f"{OUTCOMES_PATH}/", pages.index, methods=methods),
        Route(f"{OUTCOMES_PATH}.json", pages.index, methods=methods),
        Route(f"{OUTCOMES_PATH}.md", pages.index, methods=methods),
        Mount(f"{OUTCOMES_PATH}/static", app=package_files()),
        Route(OUTCOMES_PATH + "/{name}", pages.entry, methods=methods),
    ]
    return SecurityHeaders(Starlette(routes=routes))
