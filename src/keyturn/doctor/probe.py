"""Send the request, following redirects by hand so the key never leaves its origin.

httpx and requests drop ``Authorization`` on a redirect to another origin, which is safe
and also a classic cause of a 401 at the end of the chain. The doctor follows redirects
itself: within the origin (and from ``http`` to ``https`` on the same host, as clients do)
it sends the key again; to any other origin it stops and reports where the chain led.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from keyturn import __version__
from keyturn.doctor.interpret import Answer
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.sending import Convention

MAX_REDIRECTS = 5
MAX_BODY = 256 * 1024  # enough for any error body; a probe is not a download
USER_AGENT = f"keyturn-doctor/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def keeps_key(source: str, target: str) -> bool:
    """Whether a redirect from ``source`` to ``target`` may carry the key (same origin, or
    the upgrade from http to https on the same host and default ports)."""
    if origin(source) == origin(target):
        return True
    src, dst = origin(source), origin(target)
    return (src[0], dst[0]) == ("http", "https") and src[1] == dst[1] and (
        src[2],
        dst[2],
    ) == (80, 443)


@dataclass(slots=True)
class Exchange:
    """The end of a probe: the final answer, the redirects taken, and any stop."""

    answer: Answer | None = None
    redirects: list[str] = field(default_factory=list)
    blocked: str | None = None  # a redirect target on another origin, not followed
    error: str | None = None


def client(timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """A client that neither follows redirects, nor reads proxies or netrc from the
    environment: the doctor reports those, it does not let them change its answer."""
    return httpx.Client(
        follow_redirects=False, trust_env=False, timeout=timeout, transport=transport
    )


def _answer(response: httpx.Response, url: str) -> Answer:
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= MAX_BODY:
            break
    return Answer(response.status_code, tuple(response.headers.multi_items()), body, url)


def send(
    http: httpx.Client,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    convention: Convention,
    key: str,
) -> Exchange:
    """Send ``key`` by ``convention`` with ``headers`` (``$KEY`` in them is filled in)."""
    exchange = Exchange()
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        sent = [(n, v.replace("$KEY", key)) for n, v in headers]
        sent += convention.headers(key)
        if not any(n.lower() == "user-agent" for n, _ in sent):
            sent.append(("User-Agent", USER_AGENT))
        try:
            with http.stream(method, convention.url(current, key), headers=sent) as response:
                answer = _answer(response, current)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return exchange
        exchange.answer = answer
        location = answer.header("location")
        if answer.status not in _REDIRECTS or not location:
            return exchange
        target = urljoin(current, location)
        if not keeps_key(current, target):
            exchange.blocked = target
            return exchange
        exchange.redirects.append(f"{answer.status} → {target}")
        if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
            method = "GET"
        current = target
    exchange.error = f"more than {MAX_REDIRECTS} redirects"
    return exchange


def dropped(url: str, status: int, target: str) -> Finding:
    """``redirect_dropped_auth``: ``url`` sent the key's request on to another origin."""
    return finding(
        "redirect_dropped_auth",
        f"{url} answers {status} with a redirect to {target}, another origin; clients drop "
        "the key on that redirect, so the request arrives there without it",
        f"call {target} directly",
    )
