"""The one table of path rules every face is held to: ``/auth`` and each framework integration.

``RULES`` is the rule set; each ``PathCase`` is a request and the scopes it must need. The
paths are the forms a proxy passes on as sent and an upstream may resolve elsewhere (see
``keyturn._path_rules``): dot segments, encoded dots, slashes and backslashes, double
encoding, ``;`` parameters, a NUL, a fragment, case, format suffixes, absolute URIs. Each
must need at least the scopes of every rule a form of it falls under, so a key short of
one is refused, and a key holding them all passes the rules.

``oracle_forms`` is an independent account of where common upstreams route a path, written
with the standard library's own tools, for the hypothesis properties.
"""

from __future__ import annotations

import http.client
import posixpath
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from hypothesis import strategies as st

RULES: dict[str, list[str]] = {
    "/admin": ["admin"],
    "/items": ["items:read"],
    "POST /items": ["items:write"],
    "GET /reports": ["reports:read"],
}
ALL_SCOPES = ("admin", "items:read", "items:write", "reports:read")


@dataclass(frozen=True)
class PathCase:
    path: str
    needs: frozenset[str]
    method: str = "GET"
    wire: bool = True  # can be sent as an HTTP request target (no raw '#', '\\', NUL)
    # What makes it a form of /admin survives an ASGI server's decoding. Overlong UTF-8 does
    # not: uvicorn hands the app U+FFFD for it, which no ASGI app can read as '..'.
    asgi: bool = True

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _case(path: str, *needs: str, method: str = "GET", wire: bool = True) -> PathCase:
    return PathCase(path, frozenset(needs), method, wire, asgi=not _OVERLONG.search(path))


_OVERLONG = re.compile(r"%(?:c[01]|e0%[89]|f0%8)", re.IGNORECASE)


ADMIN_FORMS = [
    "/admin",
    "/admin/",
    "/admin/users",
    "/admin/../x",  # the raw string routes to /admin's handlers
    "/admin/%2e%2e/x",
    "/admin/%2E%2E/x",
    "/admin%2f..%2fx",  # an encoded slash
    "/admin%2F..%2Fx",
    "/admin/..%2fx",
    "/admin%5c..%5cx",  # an encoded backslash
    "/x/../admin",  # resolved, it is /admin
    "/x/./../admin/users",
    "/x/%2e%2e/admin",
    "/x/..%2fadmin",
    "/x/%252e%252e/admin",  # double encoding, for an upstream that decodes twice
    "/x%252f..%252fadmin",
    "//admin",
    "/.//admin/users",
    "/./admin",
    "/admin;jsessionid=1",  # ;parameters, as servlet containers drop them
    "/x/..;/admin",
    "/ADMIN",  # a case-insensitive upstream
    "/Admin/users",
    "/%61dmin",
    "/%41DMIN",
    "/admin.json",  # a format suffix (Django REST framework)
    "/admin.json/",
    "/admin./users",  # Windows drops trailing dots
    "/x/%2e%2e%2fadmin",
    "/x/..%5cadmin",
    "/x%00/../../admin",  # cut at NUL, or resolved
    "/admin%20",  # trailing spaces trimmed (WHATWG, Windows)
    "/%u0061dmin",  # IIS's %u escapes
    "/x/%c0%ae%c0%ae/admin",  # overlong UTF-8, which old decoders read as '..'
    "/x/%e0%80%ae%e0%80%ae/admin",  # three bytes
    "/x/%f0%80%80%ae%f0%80%80%ae/admin",  # four
    "/x/%c0%2e%c0%2e/admin",  # continuation bytes unchecked (lenient decoders)
    "/x/..%c0%afadmin",  # an overlong slash
    "/x/..%c1%9cadmin",  # an overlong backslash (IIS)
    "/x/..%00/admin",  # a NUL skipped
    "/adm%C4%B1n",  # a dotless i, 'I' upper-cased (Java's equalsIgnoreCase, .NET)
    "/ADM%C4%B0N",  # a dotted capital I, 'i' lower-cased
    "/%EF%BD%81dmin",  # a fullwidth 'a', normalised (NFKC)
    "/x/.%2e%09/admin",
    # Resolved before decoding (a proxy resolves the raw path, its backend decodes and folds
    # case): '/adm%C4%B1n/%2e%2e', then '/admın/..', then '/admin/..'
    "/./adm%C4%B1n/%2e%2e",
    "/./%61dmin/%2e%2e",
    "//adm%C4%B1n/%2e%2e",
    "/./adm%C4%B1n%2f%2e%2e",
    # A last segment resolved with the query after it is no dot segment: '/admin/..?q=1'
    "/./admin/..?q=1",
]
OFF_WIRE_ADMIN_FORMS = [
    "/x\\..\\admin",  # a raw backslash
    "/x/..\t/admin",  # a raw tab, which WHATWG URL parsers drop
    " /admin",
    "/x#/../admin",  # a raw fragment
    "http://example.com/admin/users",  # absolute form
    "//example.com/admin",
    # Overlong UTF-8 sent raw (a header's obs-text, a proxy passing the bytes on): the same
    # bytes as the escaped forms once decoded, and an old decoder reads them as '..' and '/'
    "/x/\xc0\xae\xc0\xae/admin",
    "/x/\xe0\x80\xae\xe0\x80\xae/admin",
    "/x/..\xc0\xafadmin",
    "/x/%c0\xae%c0\xae/admin",  # an escaped lead, its continuation raw
]

PATH_CASES: tuple[PathCase, ...] = (
    *(_case(path, "admin") for path in ADMIN_FORMS),
    *(_case(path, "admin", wire=False) for path in OFF_WIRE_ADMIN_FORMS),
    _case("/x"),  # no rule: a key, any scopes
    _case("/administrators"),  # rules cover segments, not string prefixes
    _case("/itemsx"),
    _case("/x/admin"),
    _case("/items", "items:read"),
    _case("/items/7", "items:read"),
    _case("/items.json", "items:read"),
    _case("/ITEMS", "items:read"),
    _case("/items", "items:write", method="POST"),  # the method rule beats the plain one
    _case("/items/7", "items:write", method="POST"),
    _case("/reports", "reports:read"),
    _case("/reports/2024", "reports:read", method="HEAD"),  # a GET rule covers HEAD
    _case("/reports", method="POST"),
    _case("/admin/../items", "admin", "items:read"),  # one form each: both
    _case("/items/%2e%2e/admin", "admin", "items:read"),
    _case("/reports/..%2fadmin", "admin", "reports:read", method="HEAD"),
)


# -- paths for the properties --------------------------------------------------------------

SEGMENTS = ["a", "b", "admin", "x", "A", "ADMIN", "", ".", "..", "%2e%2e", "%2E.", "..;",
            "%252e%252e", "admin.json", "a;p=1", "a.", "%61", "%c0%ae%c0%ae", "%e0%80%ae.",
            "%f0%80%80%ae%c0%2e", "adm%C4%B1n", "ADM%C4%B0N", "..%00", "%c1%1c",
            "\xc0\xae\xc0\xae", "%c0\xae.", "%E2%84%AA", "%C5%BF", "adm\u0131n", "%61dmin"]
SEPARATORS = ["/", "/", "/", "\\", "%2f", "%2F", "%5c", "%252f", "//"]
# A path's start and end, where dot segments combine with what the segments hold
# ('/./adm%C4%B1n/%2e%2e' is a dot segment, an escape, a fold and an encoded dot segment).
HEADS = ["", "", "", "/.", "//", "/%2e", "/x/.."]
TAILS = ["", "", "?q=1", "#frag", "%00", "%00/../admin", ";x", ".json", "/", "/..", "/%2e%2e",
         "/.", "%2f%2e%2e", "/%2e%2e?q=1", "/..?q=1", "/%2e%2e/", "/%2e%2e."]


@st.composite
def paths(draw: st.DrawFn, printable: bool = False) -> str:
    """Request paths built from the pieces that make upstreams disagree, or any text
    (``printable``: visible ASCII, which can travel in a header)."""
    if draw(st.integers(0, 4)) == 0:
        if printable:
            return draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30))
        return draw(st.text(max_size=30))
    segments = [s for s in SEGMENTS if s.isascii()] if printable else SEGMENTS
    # one segment as often as several: a dot segment at either end then meets it alone
    most = draw(st.sampled_from([1, 1, 3, 6]))
    parts = draw(st.lists(st.tuples(st.sampled_from(SEPARATORS), st.sampled_from(segments)),
                          min_size=1, max_size=most))
    body = "".join(sep + segment for sep, segment in parts)
    return draw(st.sampled_from(HEADS)) + body + draw(st.sampled_from(TAILS))



# -- an independent account of where upstreams route a path -----------------------------


def _decodings(path: str) -> list[str]:
    found = [path]
    for _ in range(3):
        found.append(unquote(found[-1]))
    return found + [_lenient_utf8(text) for text in found if "%" in text or not text.isascii()]


def _lenient_utf8(text: str) -> str:
    """``text`` percent-decoded to bytes and read as an old decoder reads UTF-8: a lead byte
    C0-C1, E0 or F0 and the bytes it announces, their payload bits joined, whatever they
    hold (so overlong forms of ASCII are ASCII); every other byte as Latin-1. Characters
    up to U+00FF are the raw bytes a proxy passed on (read as Latin-1, as headers are)."""
    raw = text.encode("latin-1") if max(text, default="") <= "\xff" else text.encode()
    data = unquote_to_bytes(raw)
    out, at = [], 0
    while at < len(data):
        lead = data[at]
        size = 2 if lead in (0xC0, 0xC1) else 3 if lead == 0xE0 else 4 if lead == 0xF0 else 1
        if size == 1 or at + size > len(data):
            out.append(chr(lead))
            at += 1
            continue
        value = lead & (0xFF >> (size + 1))
        for byte in data[at + 1 : at + size]:
            value = (value << 6) | (byte & 0x3F)
        out.append(chr(value) if value < 0x80 else chr(lead))
        at += size if value < 0x80 else 1
    return "".join(out)


def _java_fold(text: str) -> str:
    """``text`` as Java's ``equalsIgnoreCase`` compares it: each character upper-cased, then
    lower-cased (simple mappings: one character each)."""
    return "".join(
        (up if len(up := c.upper()) == 1 else c).lower()[:1] or c for c in text
    )


def _nginx(path: str) -> str:
    """Decoded, dot segments resolved, slashes merged (and no leading '//')."""
    normal = posixpath.normpath("/" + path)
    return "/" + normal.lstrip("/")


def _tomcat(path: str) -> str:
    return _nginx("/".join(s.split(";")[0] for s in path.split("/")))


def _windows(path: str) -> str:
    segments = [s if set(s) <= {"."} else s.rstrip(". ") for s in path.split("/")]
    return _nginx("/".join(segments))


def _drf(path: str) -> str:
    return re.sub(r"\.[^/.]*/?$", "", path.rstrip("/")) or "/"


def oracle_forms(target: str) -> set[str]:
    """Paths common upstreams may route ``target`` (a request target, or a path) to."""
    raws = {target, target.split("?")[0], target.split("#")[0], target.split("?")[0].split("#")[0]}
    if not target.startswith("/") or target.startswith("//"):
        raws.add(urlsplit(target).path)
    # Resolved before it is decoded, too: a proxy resolves the raw path, its backend decodes.
    raws |= {resolve(raw) for raw in raws for resolve in (_nginx, _tomcat, _windows)}
    paths: set[str] = set()
    for raw in raws:
        for decoded in _decodings(raw):
            whatwg = re.sub(r"[\t\n\r]", "", decoded).strip("".join(map(chr, range(33))))
            texts = {decoded, decoded.replace("\\", "/"), decoded.split("\x00")[0], whatwg,
                     decoded.replace("\x00", "")}  # fmt: skip
            for text in texts:
                text = text if text.startswith("/") else "/" + text
                paths.update((text, _nginx(text), _tomcat(text), _windows(text)))
    routed = set(paths) | {_drf(p) for p in paths}
    return routed | {p.lower() for p in routed} | {_java_fold(p) for p in routed}


# -- requests as sent, byte for byte --------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def send_raw(
    base_url: str, method: str, target: str, headers: dict[str, str] | None = None
) -> RawAnswer:
    """One request with ``target`` exactly as given: HTTP clients (httpx among them)
    normalise dot segments and encodings away, which is what these tests must not do."""
    host, _, port = urlsplit(base_url).netloc.partition(":")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        return RawAnswer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, body
        )
