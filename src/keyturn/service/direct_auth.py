"""``/auth`` answered by the HTTP protocol itself, when the request allows it.

A raw-ASGI hello-world is most of what a server spends on a request: under uvicorn's h11
protocol, parsing the head into events, building the scope, a task and its request cycle,
and writing the response through h11 again (each header validated by regular expressions)
cost about 530,000 instructions a request (callgrind), where deciding a cached key takes
some 60,000; under httptools the parser is C, but the scope, the per-header callbacks, the
task, the cycle and the checked writes remain. So ``keyturn serve`` answers the usual
forward-auth request in the protocol's ``data_received``, before the parser sees it: the
same ``ForwardAuth`` decision (``ForwardAuth.answer_now``: counted, logged and recorded
alike), written as the bytes uvicorn would write (the same on both protocols).

Only a request that leaves no room for doubt is taken, and everything else goes to uvicorn
unchanged: the connection between requests (the parser in no request, no response under
way, not draining, not paused), one whole request head and nothing after it, ``HTTP/1.1``,
a method with no body to frame (``HEAD`` answers without one: left to uvicorn), a target of
``/auth`` in visible ASCII without a fragment (httptools drops one, h11 keeps it), header
lines that are plain ``name: value`` in visible ASCII, exactly one ``Host``, and no header
that changes how the connection or a body is handled (``Content-Length``,
``Transfer-Encoding``, ``Connection``, ``Expect``, ``Upgrade``). A key that is not cached (a
store read) is answered by uvicorn too: nothing was recorded for it here. Each condition is
what h11, httptools and uvicorn would accept and read the same way, so the scope
``ForwardAuth`` sees, and the answer, are the ones it gets through ASGI.

The reading of the head and the writing of the answer are one (``DirectAuthProtocol``); the
protocols differ only in how they tell that the connection is between requests
(``H11Seam``, ``HttpToolsSeam``). Both read uvicorn's internals, so they are used only with
the uvicorn releases they are tested with (``UVICORN_TESTED``, ``seam_for``): with another
one, ``/auth`` is answered through ASGI, as every other request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from keyturn._asgi import Scope
from keyturn.service.forward_auth import Wire, header_lines

# The methods taken (none that frames a body without saying so, nor HEAD), each as the
# scope's one string (a method read per request would be a new string, hashed anew by each
# dictionary it meets).
_METHODS = {
    name.encode("ascii"): name for name in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}
_REQUEST_LINE = re.compile(
    b"(" + b"|".join(_METHODS) + rb") (/auth(?:[/?][\x21-\x22\x24-\x7e]*)?) HTTP/1\.1\r\n"
)
# Header lines are RFC 9110's token, a colon, the value with the whitespace around it:
# visible ASCII, spaces and tabs only, each line ended by CRLF. The lines' bytes are checked
# together, once the CRLFs between them are taken out (a lone CR or LF is left, and is not
# visible): ``translate`` turns every byte that may not be there into a space, so they are
# unchanged only if there was none. Each name is checked once per spelling (``_NAMES``). A
# regular expression over the lines cost more than the rest of the head.
_VISIBLE = bytes(c if c == 0x09 or 0x20 <= c <= 0x7E else 0x20 for c in range(256))
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# Header names seen, each a token, as sent -> lower-case: at most _MOST_NAMES (forgotten
# together when full), each at most _LONGEST_NAME bytes (a longer one is checked each time).
_NAMES: dict[bytes, bytes] = {}
_MOST_NAMES = 1024
_LONGEST_NAME = 64
# Headers that change how the connection or a body is handled.
_FRAMING = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade"}
)
# The longest head taken here (h11's default bound on a head it is still reading).
HEAD_LIMIT = 16 * 1024
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, phrase) for status, phrase in STATUS_PHRASES.items()
}
# The uvicorn releases (major, minor) whose protocol internals the seams below are tested
# against, oldest and newest: with another release ``seam_for`` finds none.
UVICORN_TESTED = ((0, 30), (0, 55))


def request_scope(data: bytes, limit: int) -> Scope | None:
    """The ASGI scope uvicorn would build (the parts ``ForwardAuth`` reads) for ``data``,
    if it is exactly one plain ``/auth`` request head of at most ``limit`` bytes."""
    # One head, whole, and nothing after it: it ends with the empty line, and an empty line
    # before that is an empty header line below, whose name is not a token.
    if len(data) > limit or data[-4:] != b"\r\n\r\n":
        return None
    line = _REQUEST_LINE.match(data)
    if line is None:
        return None
    block = data[line.end() : -4]  # the header lines, without the last one's CRLF
    text = block.replace(b"\r\n", b"")
    if text.translate(_VISIBLE) != text:
        return None
    headers = []
    hosts = 0
    for field in block.split(b"\r\n"):
        name, colon, value = field.partition(b":")
        lowered = _NAMES.get(name)
        if lowered is None:
            lowered = _name(name)
            if lowered is None:
                return None
        if not colon or lowered in _FRAMING:
            return None
        if lowered == b"host":
            hosts += 1
        headers.append((lowered, value.strip(b" \t")))
    if hosts != 1:
        return None
    method, target = line.groups()
    raw_path, _, query = target.partition(b"?")
    if raw_path == b"/auth":  # the usual target: its text is a constant
        path = "/auth"
    elif "%" in (path := raw_path.decode("ascii")):
        path = unquote(path)
    return {
        "type": "http",
        "http_version": "1.1",
        "method": _METHODS[method],
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
    }


def _name(name: bytes) -> bytes | None:
    """``name`` in lower case, remembered, if it is a token (a header's name); else None."""
    if _TOKEN.fullmatch(name) is None:
        return None
    lowered = name.lower()
    if len(name) <= _LONGEST_NAME:
        if len(_NAMES) >= _MOST_NAMES:
            _NAMES.clear()
        _NAMES[name] = lowered
    return lowered


def response_bytes(answer: Wire, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The answer as uvicorn writes it, on h11 and on httptools alike (its own headers, like
    Date, first; the answer's names are lower-case already, as httptools would write them)."""
    global _defaults
    status, lines, body = answer
    written = _defaults
    if written[0] is not default_headers:
        written = _defaults = (default_headers, header_lines(default_headers))
    return b"".join((_STATUS_LINES[status], written[1], lines, b"\r\n", body))


# The server's own headers (``ServerState.default_headers``) and their lines: uvicorn makes
# a new list when they change (the Date, once a second), so they are written once per list.
_defaults: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


class DirectAuthProtocol:
    """The mixin over the server's guarded protocol (``keyturn.service.connections``); a
    seam below says when the connection is between requests."""

    # uvicorn's attributes, set by its protocol classes (both have these).
    loop: Any
    cycle: Any
    timeout_keep_alive_task: Any
    transport: Any
    flow: Any
    server_state: Any
    client: tuple[str, int] | None
    server: tuple[str, int] | None
    root_path: str
    edge: Any
    _draining: int
    answer_now: Callable[[Scope], Wire | None]

    def between_requests(self) -> bool:
        """Nothing of a request has been read, and no response is under way."""
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        if data.find(b" /auth", 0, 14) > 0 and (  # the method is at most 7 letters
            self.between_requests()
            and self._draining < 0
            and not self.root_path
            and not self.flow.write_paused
            and not self.transport.is_closing()
        ):
            scope = request_scope(data, HEAD_LIMIT)
            if scope is not None:
                scope["client"] = self.client
                scope["server"] = self.server
                try:
                    answer = self.answer_now(scope)
                except Exception:  # a fault: uvicorn answers it (500) and logs it
                    answer = None
                if answer is not None:
                    if self.timeout_keep_alive_task is not None:  # after an ASGI answer
                        self._unset_keepalive_if_required()  # type: ignore[attr-defined]
                    self.transport.write(response_bytes(answer, self.server_state.default_headers))
                    self.cycle = None
                    # What uvicorn's on_response_complete does between requests (reading is
                    # not paused, no request is pipelined), but its keep-alive timer: the
                    # edge's sweep closes the connection once idle that long. An idle
                    # connection stays in ``edge.idle`` while this runs: nothing can push it
                    # out in between (no await), and it is moved to the end now.
                    self.server_state.total_requests += 1
                    self.edge.rest(self, self.loop.time())
                    return
        super().data_received(data)  # type: ignore[misc]


class H11Seam(DirectAuthProtocol):
    """Over ``H11Protocol``: h11 says where it is, and what it holds unread."""

    conn: h11.Connection

    def between_requests(self) -> bool:
        conn = self.conn
        return (
            conn.our_state is h11.IDLE
            and conn.their_state is h11.IDLE
            and not conn.trailing_data[0]
            and (self.cycle is None or self.cycle.response_complete)
        )


class HttpToolsSeam(DirectAuthProtocol):
    """Over ``HttpToolsProtocol``: httptools keeps no buffer, but its parser has a state it
    does not tell, so the protocol notes when a request begins and when it is complete
    (with a request upgrading the connection, the parser never reads another: nor does this)."""

    parser: Any
    _idle = True  # a new connection's parser has read nothing

    def between_requests(self) -> bool:
        return self._idle and (self.cycle is None or self.cycle.response_complete)

    def on_message_begin(self) -> None:
        self._idle = False
        super().on_message_begin()  # type: ignore[misc]

    def on_message_complete(self) -> None:
        super().on_message_complete()  # type: ignore[misc]
        self._idle = not self.parser.should_upgrade()


def seam_for(base: type[Any]) -> type[DirectAuthProtocol] | None:
    """The mixin that answers ``/auth`` in uvicorn's protocol ``base``; ``None`` for a
    protocol or a uvicorn release it is not tested with."""
    if not UVICORN_TESTED[0] <= release(uvicorn.__version__) <= UVICORN_TESTED[1]:
        return None
    if issubclass(base, H11Protocol):
        return H11Seam
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        return None
    return HttpToolsSeam if issubclass(base, HttpToolsProtocol) else None


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string; (0, 0) if it does not start with two numbers."""
    major, _, rest = version.partition(".")
    minor = re.match(r"\d+", rest)
    return (int(major), int(minor[0])) if major.isdigit() and minor else (0, 0)
