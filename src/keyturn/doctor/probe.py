"""Send the request, following redirects by hand so the key never leaves its origin.

httpx and requests drop ``Authorization`` on a redirect to another origin, which is safe
and also a classic cause of a 401 at the end of the chain. The doctor follows redirects
itself: within the origin (and from ``http`` to ``https`` on the same host, as clients do)
it sends the key again; to any other origin it stops and reports where the chain led.

What the probe sends, and to where, is bounded: no ``user:password@`` from a URL (httpx
would turn it into a Basic header replacing the key), ``localhost`` and ``*.localhost``
reached on the loopback interface without asking DNS (a resolver may send them anywhere),
at most ``MAX_BODY`` bytes read, and the whole exchange within the ``Deadline``. Everything
the server says is scrubbed of the key before anyone reads it.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from keyturn import __version__
from keyturn.doctor.deadline import Deadline, OutOfTime
from keyturn.doctor.interpret import Answer
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.route import is_loopback_name, without_password
from keyturn.doctor.scrub import Scrubber
from keyturn.doctor.sending import Convention

MAX_REDIRECTS = 5
MAX_BODY = 256 * 1024  # enough for any error body; a probe is not a download
USER_AGENT = f"keyturn-doctor/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_LOOPBACK_ADDRESSES = ("127.0.0.1", "[::1]")
_DEFAULTS = (("User-Agent", USER_AGENT), ("Accept", "*/*"))


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``; ``ValueError`` for a port that is not one."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def keeps_key(source: str, target: str) -> bool:
    """Whether a redirect from ``source`` to ``target`` may carry the key (same origin, or
    the upgrade from http to https on the same host and default ports)."""
    src, dst = origin(source), origin(target)
    if src == dst:
        return True
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
    bad_location: str | None = None  # a Location that is not a URL one can follow
    error: str | None = None
    out_of_time: bool = False


@dataclass(slots=True)
class Sender:
    """What every request of one probe shares: the transport, the deadline, the scrubber.

    Requests go to the transport itself, not through an ``httpx.Client``: a client adds
    what the doctor must not (Basic auth from a URL's userinfo, cookies, proxies from the
    environment) and refuses a response whose ``Location`` it cannot parse, which is a
    finding about the server rather than an error."""

    transport: httpx.BaseTransport
    deadline: Deadline
    scrub: Scrubber

    def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        convention: Convention,
        key: str,
    ) -> Exchange:
        """Send ``key`` by ``convention`` with ``headers`` (``$KEY`` in them is filled in),
        within the deadline; never raises."""
        try:
            return self.deadline.call(
                lambda: self._follow(method, url, headers, convention, key)
            )
        except OutOfTime:
            return Exchange(out_of_time=True)
        except Exception as exc:  # whatever a server or a library throws is a finding
            return Exchange(error=self.scrub.answer(f"{type(exc).__name__}: {exc}".rstrip(": ")))

    def _follow(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        convention: Convention,
        key: str,
    ) -> Exchange:
        exchange = Exchange()
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            sent = [(n, v.replace("$KEY", key)) for n, v in headers]
            sent += convention.headers(key)
            names = {n.lower() for n, _ in sent}
            sent += [(n, v) for n, v in _DEFAULTS if n.lower() not in names]
            try:
                answer, location = self._once(method, convention.url(current, key), sent)
            except OutOfTime:
                exchange.out_of_time = True
                return exchange
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                exchange.out_of_time = self.deadline.passed
                exchange.error = self.scrub.answer(f"{type(exc).__name__}: {exc}".rstrip(": "))
                return exchange
            exchange.answer = answer
            if answer.status not in _REDIRECTS or not location:
                return exchange
            try:
                target = urljoin(current, location)
                same = keeps_key(current, target)
                httpx.URL(target)
            except (ValueError, httpx.InvalidURL):
                exchange.bad_location = self.scrub.answer(without_password(location))
                return exchange
            if not same:
                exchange.blocked = self.scrub.answer(without_password(target))
                return exchange
            shown = self.scrub.answer(without_password(target))
            exchange.redirects.append(f"{answer.status} → {shown}")
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method = "GET"
            current = target
        exchange.error = f"more than {MAX_REDIRECTS} redirects"
        return exchange

    def _once(
        self, method: str, url: str, headers: list[tuple[str, str]]
    ) -> tuple[Answer, str | None]:
        """One request: the scrubbed answer and the raw ``Location`` (to follow it)."""
        target = httpx.URL(url).copy_with(username=None, password=None)
        extensions: dict[str, object] = {"trace": self.deadline.trace}
        if is_loopback_name(target.host):
            headers = [*headers, ("Host", target.netloc.decode("ascii"))]
            extensions["sni_hostname"] = target.host
        *first, last = _addresses(target)
        for address in first:
            try:
                return self._exchange(method, target, address, headers, extensions)
            except httpx.ConnectError:
                continue  # a server on ::1 only
        return self._exchange(method, target, last, headers, extensions)

    def _exchange(
        self,
        method: str,
        target: httpx.URL,
        address: str | None,
        headers: list[tuple[str, str]],
        extensions: dict[str, object],
    ) -> tuple[Answer, str | None]:
        url = target if address is None else target.copy_with(host=address.strip("[]"))
        timeout = httpx.Timeout(max(self.deadline.remaining(), 0.001))
        request = httpx.Request(
            method, url, headers=headers,
            extensions={**extensions, "timeout": timeout.as_dict()},
        )
        response = self.transport.handle_request(request)
        response.request = request
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if self.deadline.passed:
                    raise OutOfTime  # an answer still arriving is no answer
                if len(body) >= MAX_BODY:
                    break
        finally:
            response.close()
        location = response.headers.get("location")
        scrubbed = tuple((n, self.scrub.answer(v)) for n, v in response.headers.multi_items())
        shown = self.scrub.answer(str(target))
        body_shown = self.scrub.bytes(bytes(body))
        return Answer(response.status_code, scrubbed, body_shown, shown), (
            location
        )


def _addresses(url: httpx.URL) -> tuple[str | None, ...]:
    """Where to connect: the loopback addresses for a loopback name (never DNS), else the
    name itself."""
    return _LOOPBACK_ADDRESSES if is_loopback_name(url.host) else (None,)


def client(
    timeout: float = 10.0, transport: httpx.BaseTransport | None = None
) -> httpx.BaseTransport:
    """The transport a probe sends through: ``transport`` if given, else a plain HTTP
    transport (no proxies or netrc from the environment: the doctor reports those, it does
    not let them change its answer). ``timeout`` is kept for callers of old; each request
    gets the time left on its probe's deadline."""
    return transport if transport is not None else httpx.HTTPTransport(verify=_tls())


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS set-up (the certificate bundle, ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` honoured), made once per process: reading the bundle costs about 15 ms
    of CPU, more than a loopback probe, and a context serves any number of connections."""
    return httpx.create_ssl_context()


def send(
    http: httpx.BaseTransport,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    convention: Convention,
    key: str,
    *,
    timeout: float = 10.0,
) -> Exchange:
    """One probe on its own: ``key`` sent by ``convention`` to ``url`` within ``timeout``
    seconds in all, the answer scrubbed of it. (The checkup's ``Sender`` shares one deadline
    and one scrubber between the request and its variants.)"""
    with Deadline(timeout) as deadline:
        return Sender(http, deadline, Scrubber([key])).send(
            method, url, headers, convention, key
        )


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def dropped(url: str, status: int, target: str) -> Finding:
    """``redirect_dropped_auth``: ``url`` sent the key's request on to another origin."""
    return finding(
        "redirect_dropped_auth",
        f"{url} answers {status} with a redirect to {target}, another origin; clients drop "
        "the key on that redirect, so the request arrives there without it",
        f"call {target} directly",
    )
