"""``/auth``: the forward-auth endpoint that nginx, Traefik, Caddy and Envoy ask per request.

The proxy forwards the original request's headers (and tells the original method and URI in
``X-Forwarded-*`` or ``X-Original-*`` headers, or, for Envoy's ext_authz, by appending the
original path to ``/auth``). keyturn answers 204 with the caller's identity in headers (and
the key's lifecycle, ``keyturn.lifecycle_headers``, for the proxy to pass to the client), or
the catalogue's full 401/403/400/429 answer, which the proxy hands to the client unchanged.

This is raw ASGI on purpose: it runs once per proxied request, so it must cost little more
than the server's own HTTP handling (``bench/forward_auth.py`` holds it to 0.90x of a
hello-world).
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter, time

from keyturn._asgi import Receive, Scope, Send
from keyturn._header_spellings import spellings_b
from keyturn._path_rules import PathRules
from keyturn._query_names import QueryNames
from keyturn._redact import Redactor
from keyturn._request_ids import HEADER_ASGI, new_id, request_id_of
from keyturn._verifications import Seen
from keyturn.answer import HttpAnswer, render, render_error
from keyturn.config import Settings
from keyturn.errors import KeyturnError
from keyturn.lifecycle_headers import as_bytes, due_from, lifecycle_headers
from keyturn.manager import AsyncKeyManager
from keyturn.record import KeyRecord
from keyturn.service.access_log import AccessLines, Parts, remembering
from keyturn.service.identity_headers import identity_headers
from keyturn.service.metrics import Metrics
from keyturn.verifier import Decision

# The original URI as proxies tell it; and as some frameworks read it from a client's
# X-Original-URL or X-Rewrite-URL (IIS conventions, honoured by Zend and older Symfony),
# which a proxy passes on: every one of them is an account to judge. Each under every
# spelling a CGI-style upstream reads as it (X_Original_URL is X-Original-URL to PHP).
_URI_HEADERS = spellings_b("x-forwarded-uri", "x-original-uri", "x-original-url", "x-rewrite-url")
_METHOD_HEADERS = spellings_b("x-forwarded-method", "x-original-method")
# Method-override conventions, which some frameworks honour: the upstream may handle the
# request as that method, so each is one more account of it to judge.
_OVERRIDE_HEADERS = spellings_b("x-http-method-override", "x-http-method", "x-method-override")
# ... and the query parameters of the same conventions: ``_method`` (Laravel, Symfony,
# Express's method-override: ``POST /orders?_method=DELETE`` may be handled as a DELETE),
# and the headers' names, which ASP.NET MVC also reads from the query
# (``?X-HTTP-Method-Override=DELETE``); read as every parser may (``.method`` is
# ``_method`` to PHP, names in any case).
_OVERRIDE_PARAM = QueryNames(("_method", "x-http-method-override", "x-http-method",
                              "x-method-override"))  # fmt: skip
_may_override = _OVERRIDE_PARAM.mentions
# The first letter of the names of the headers read here besides User-Agent (``x-``, and
# its CGI spelling ``x_``): one comparison tells most others apart (a one-byte slice is
# the interpreter's own object, never a new one).
_EXTENSION = b"x"
_IDENTITY_LIMIT = 10_000
_MOST_URIS = 8  # distinct paths told of one request (proxy's, client's, Envoy's) judged
# Characters of distinct paths read for one request: what one path at the engine's length
# cap costs, however many accounts a client adds.
_MOST_PATH_TEXT = 2048
# A Seen from all its fields in order, as one C call: Seen(...) runs the Python-level
# __new__ of a NamedTuple, a frame more on every request.
_new_seen = tuple.__new__
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
"""An answer in full: status, headers, body."""
RequestId = tuple[str, bytes]
"""A request's id as the log records it and as the answer's header sends it."""


Wire = tuple[int, bytes, bytes]
"""An answer as the protocol writes it: status, its header lines (``header_lines``), body."""
_CRLF = b"\r\n"
_ID_LINE = HEADER_ASGI + b": "
_PAIR = b": "

# A record; its identity headers, and the same with its lifecycle headers, each as ASGI
# sends them and as lines written; and when the lifecycle headers are due.
_Headers = tuple[list[tuple[bytes, bytes]], bytes]
_Identity = tuple[KeyRecord, _Headers, _Headers, float]


class ForwardAuth:
    __slots__ = (
        "_count",
        "_fields",
        "_identity",
        "_lines",
        "_observe",
        "_proxies",
        "_public_url",
        "_realm",
        "_redact",
        "_resume",
        "_rules",
        "_scopes_header",
        "_triage",
        "_trusted",
    )

    def __init__(
        self,
        manager: AsyncKeyManager,
        settings: Settings,
        metrics: Metrics,
        access: AccessLines | None = None,
    ) -> None:
        """``access``: the access log (``/auth`` writes its own line: it is not wrapped)."""
        # manager.verify_asgi, unrolled: a cached key is decided inline, without a coroutine.
        self._triage = manager.sync.verify_asgi
        self._resume = manager.resume_asgi
        self._rules = PathRules.from_scope_rules(settings.rules) if settings.rules else None
        self._scopes_header = settings.scopes_header.lower().encode("latin-1") or None
        self._realm = settings.realm
        self._public_url = settings.public_url
        self._count = metrics.count["forward_auth"]
        self._observe = metrics.observe["forward_auth"]
        self._lines = access
        # (outcome, key id, method, URI) -> their access-log fields (``Parts``: never a key)
        self._fields = Parts()
        self._redact = remembering(Redactor(settings.query_params).uri)
        self._proxies = manager.sync.verifier.proxies.set
        # Whether any proxy is trusted (fixed with the settings): its truth a Python call.
        self._trusted = bool(self._proxies)
        # key id -> (the record the headers were built from, the headers)
        self._identity: dict[str, _Identity] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        headers = scope["headers"]
        verb, scopes, query, original, rid, peer, agent = self._request(scope, headers)
        # Recorded with the decision, by the core; the headers only if a proxy is trusted
        # (its forwarded addresses name the client).
        seen = _new_seen(Seen, (verb, original, rid[0], agent, headers if self._trusted else ()))
        lines = self._lines
        status = 500  # the server's answer if this fails before answering
        try:
            try:
                found = self._triage(headers, query, scopes, peer, seen, True)
                if isinstance(found, Decision):
                    decision = found
                else:
                    decision = await self._resume(found, headers, query, scopes, peer, seen)
            except KeyturnError as exc:  # the store or Redis did not answer: 503, fail closed
                code, key_id = exc.code, None
                self._count[code]()
                answer = render_error(exc, self._realm, public_url=self._public_url)
                status, out, body = _problem(answer, rid)
            else:
                code, key_id = decision.outcome.code, decision.key.id if decision.key else None
                status, out, body = self._answer(decision, code, rid, started)
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": body})
        except BaseException:
            if lines is not None:  # what the client got, or the 500 the server sends
                lines.write(scope, status, perf_counter() - started)
            raise
        if lines is not None:
            lines.write(scope, status, perf_counter() - started,
                        self._logged(lines, code, key_id, verb, original))

    def answer_now(self, scope: Scope) -> Wire | None:
        """The answer to an HTTP ``scope`` for ``/auth`` if it is decided without waiting
        (a cached key: the usual case), counted and logged as ``__call__`` does, with its
        headers as written (``Wire``); ``None`` when it needs the store (nothing was
        counted, logged or recorded then: the request is to be answered by ``__call__``).
        For ``keyturn.service.direct_auth``."""
        started = perf_counter()
        headers = scope["headers"]
        verb, scopes, query, original, rid, peer, agent = self._request(scope, headers)
        seen = _new_seen(Seen, (verb, original, rid[0], agent, headers if self._trusted else ()))
        found = self._triage(headers, query, scopes, peer, seen, True)
        if not isinstance(found, Decision):
            return None
        code = found.outcome.code
        self._counted(code, started)
        record = found.key
        if code == "valid" and record is not None:
            # The identity's lines written once per key: only the request's id is new.
            wire: Wire = 204, b"".join((self._identity_of(record)[1], _ID_LINE, rid[1], _CRLF)), b""
        else:
            status, out, body = self._refusal(found, rid)
            wire = status, header_lines(out), body
        lines = self._lines
        if lines is not None:
            lines.write(scope, wire[0], perf_counter() - started,
                        self._logged(lines, code, record.id if record else None, verb, original))
        return wire

    def _answer(self, decision: Decision, code: str, rid: RequestId, started: float) -> Answer:
        """What a decision is answered with (counted in the metrics); ``code``: its outcome's
        (``Decision.code`` and ``.ok`` are properties: each a call, read once by the caller)."""
        self._counted(code, started)
        record = decision.key
        if code == "valid" and record is not None:
            return 204, [*self._identity_of(record)[0], (HEADER_ASGI, rid[1])], b""
        return self._refusal(decision, rid)

    def _counted(self, code: str, started: float) -> None:
        """A decision in the metrics: its outcome, and how long it took since ``started``."""
        self._count[code]()
        self._observe(perf_counter() - started)

    def _refusal(self, decision: Decision, rid: RequestId) -> Answer:
        return _problem(render(decision, self._realm, self._public_url), rid)

    def _request(
        self, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> tuple[str, tuple[str, ...], bytes, str, RequestId, str | None, str]:
        """What the proxy asks about: the method, the scopes it needs, the query to read a
        key from, the original URI; the request's id (as ``new_id`` gives one), the peer's
        address and the user agent (for the verification log)."""
        uris: list[bytes] = []
        methods: list[bytes] = []
        overrides: list[bytes] = []
        demanded: list[bytes] = []
        request_ids: list[bytes] = []
        agent = b""
        wanted = self._scopes_header
        for name, value in headers:
            if name[:1] == _EXTENSION:
                if name == b"x-request-id":
                    request_ids.append(value)
                elif name in _URI_HEADERS:
                    uris.append(value)
                elif name in _METHOD_HEADERS:
                    methods += _listed(value)
                elif name == wanted:
                    demanded.append(value)
                elif name in _OVERRIDE_HEADERS:
                    overrides += _listed(value)
            elif name == b"user-agent" and not agent:
                agent = value
            elif name == wanted:  # a name of the settings' without ``x-``
                demanded.append(value)
        # Envoy's ext_authz appends the original path and query to /auth.
        raw = scope.get("raw_path") or scope["path"].encode("latin-1")
        if len(raw) > 5:
            query = scope["query_string"]
            uris.append(raw[5:] + (b"?" + query if query else b""))
        elif not uris:
            uris.append(b"/?" + scope["query_string"])
        # The reader's own test (``_may_override``), so a name it reads is never missed here.
        if len(uris) == 1:  # the usual case: its path and query read once
            path_b, _, query = uris[0].partition(b"?")
            if query and _may_override(query):
                overrides.extend(_query_overrides(query))
        else:
            for uri in uris:
                told_query = uri.partition(b"?")[2]
                if told_query and _may_override(told_query):
                    overrides.extend(_query_overrides(told_query))
        if len(uris) == 1 and len(methods) < 2 and not overrides:  # the usual case, faster
            verb = methods[0].decode("latin-1") if methods else scope["method"]
            scopes: tuple[str, ...] = ()
            if self._rules is not None:
                scopes = self._rules.requirement(verb, path_b.decode("latin-1")) or ()
        else:
            verb, scopes, query = self._union(scope, uris, methods + overrides, bool(methods))
        if demanded:
            extra = b" ".join(demanded).decode("latin-1").replace(",", " ").split()
            scopes = tuple(dict.fromkeys((*scopes, *extra)))

        client = scope.get("client")
        peer = client[0] if client else None
        # No X-Request-Id to weigh (the usual case): a new one, its bytes made with it.
        if request_ids:
            taken = request_id_of(request_ids, peer, self._proxies)
            rid: RequestId = (taken, taken.encode("ascii"))
        else:
            rid = new_id()
        original = uris[0].decode("latin-1")
        return verb, scopes, query, original, rid, peer, agent.decode("latin-1")

    def _logged(
        self, lines: AccessLines, code: str, key_id: str | None, verb: str, original: str
    ) -> str:
        """The access log's fields for ``/auth``: the outcome, the key and the request the
        proxy forwarded (a key in its URI masked); worked out once for a repeated one."""
        facts = (code, key_id, verb, original)
        fields = self._fields.get(facts)
        if fields is None:
            shown = self._redact(original)
            noted = (("outcome", code), ("key_id", key_id), ("forwarded", f"{verb} {shown}"))
            fields = lines.fields(noted)
            if shown == original:
                self._fields.keep(facts, original, fields)
        return fields

    def _union(
        self, scope: Scope, uris: list[bytes], methods: list[bytes], told: bool
    ) -> tuple[str, tuple[str, ...], bytes]:
        """More than one account of the original request: a proxy that forwards the client's
        headers (nginx does) lets a client add an ``X-Forwarded-Uri`` of its own beside the
        one the proxy set, and a method override names another method. Whichever is true,
        the request needs the scopes of every account, so a forged one can only add
        requirements; the queries are read together, so a key in any of them is seen.
        ``told``: a proxy said the method; else it is this request's own (Envoy)."""
        verbs = [m.decode("latin-1") for m in methods]
        if not told:
            verbs.insert(0, scope["method"])
        split = [uri.partition(b"?") for uri in uris]
        scopes: dict[str, None] = {}
        if self._rules is not None:
            # Each method the rules tell apart, and each path, once: the accounts are the
            # client's to multiply (a header of a thousand methods beside a hundred URIs
            # was a hundred thousand judgements, seconds of the event loop).
            # A path can take milliseconds to read in all its forms, and no proxy tells
            # more than a few URIs: more than _MOST_URIS need what every rule needs.
            paths = dict.fromkeys(path_b.decode("latin-1") for path_b, _, _ in split)
            if len(paths) > _MOST_URIS or (
                len(paths) > 1 and sum(map(len, paths)) > _MOST_PATH_TEXT
            ):
                scopes.update(dict.fromkeys(self._rules.strictest or ()))
                paths = {}
            for verb in dict.fromkeys(map(self._rules.judged_as, verbs)):
                for path in paths:
                    needed = self._rules.requirement(verb, path)
                    scopes.update(dict.fromkeys(needed or ()))
        query = b"&".join(q for _, _, q in split if q)
        return verbs[0], tuple(scopes), query

    def _identity_of(self, record: KeyRecord) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The identity headers for the upstream (and the key's lifecycle, once due), as ASGI
        sends them and as lines written (``header_lines``), made once per key."""
        cached = self._identity.get(record.id)
        if cached is None or cached[0] is not record:
            if len(self._identity) >= _IDENTITY_LIMIT:
                self._identity.clear()
            # The identity for the upstream, and the key's lifecycle for the client once it
            # is due (the documented proxy configs pass ``Keyturn-Key-*`` on to the response).
            identity = identity_headers(record)
            told = [*identity, *as_bytes(lifecycle_headers(record))]
            cached = self._identity[record.id] = (
                record, (identity, header_lines(identity)), (told, header_lines(told)),
                due_from(record),
            )
        return cached[2] if time() >= cached[3] else cached[1]


def header_lines(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """ASGI header pairs as HTTP/1.1 writes them, each ``name: value`` and CRLF (joined in C:
    a ``%`` format per header cost more than the rest of the answer)."""
    lines = _CRLF.join(map(_PAIR.join, headers))
    return lines + _CRLF if lines else b""


def _problem(answer: HttpAnswer, rid: RequestId) -> Answer:
    """A refusal or an error: the catalogue's answer, with the request's id."""
    body = answer.body_bytes()
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    headers.append((HEADER_ASGI, rid[1]))
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    return answer.status, headers, body


def _query_overrides(query: bytes) -> list[bytes]:
    """The methods a query's override parameters (``_OVERRIDE_PARAM``) name, read as every
    parser may (``keyturn._query_names``: ``%5Fmethod``, ``a=1;_method``, ``.method``,
    ``_method%00`` and ``_METHOD`` each count)."""
    named = [v.encode("latin-1") for _, v in _OVERRIDE_PARAM.pairs(query.decode("latin-1"))]
    return [method for value in named for method in _listed(value)]


def _listed(value: bytes) -> list[bytes]:
    """The methods a header or parameter names: a list, as a proxy joins repeated headers
    and as Express's method-override reads one (its first item: ``POST, GET`` is POST to
    it), so every item counts."""
    return [value] if value.find(b",") < 0 else value.split(b",")
