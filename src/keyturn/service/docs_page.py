"""``/docs``: Swagger UI served from the package, under a strict Content-Security-Policy.

Admins paste keys into this page's "Authorize" dialog, so nothing on it may come from
anywhere else: FastAPI's default page loads Swagger UI from a CDN (whoever controls that
CDN, or the path to it, would read every key typed in) and starts it with an inline script.
Here the assets are vendored (``static/swagger-ui/VERSION`` says which release, under which
licence), the start-up code is a file of its own, and the policy allows scripts, styles,
images and requests from this service only, no inline code and no framing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS = "/docs/static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — API</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body data-openapi="{openapi}">
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""


class _Assets(StaticFiles):
    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["cache-control"] = "public, max-age=86400"
        return response


def add_docs_page(app: FastAPI, title: str, openapi_url: str = "/openapi.json") -> None:
    """Serve the page at ``/docs`` and its assets under ``/docs/static``."""
    folder = Path(str(resources.files("keyturn.service") / "static" / "swagger-ui"))

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = _PAGE.format(title=title, assets=root + ASSETS, openapi=root + openapi_url)
        return HTMLResponse(page, headers=HEADERS)

    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, _Assets(directory=folder), name="docs-assets")
