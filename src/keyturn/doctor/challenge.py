"""Parse ``WWW-Authenticate`` (RFC 9110 §11.6.1) into challenges, never raising.

    WWW-Authenticate = #challenge
    challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param       = token BWS "=" BWS ( token / quoted-string )

The grammar is ambiguous by design: commas separate both challenges and parameters, so a
bare token after a comma starts a new challenge while ``token=value`` continues the current
one. Servers also send garbage; the parser keeps what it can read and skips the rest,
because a diagnosis must not crash on the very answer it is meant to explain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TOKEN68 = frozenset("-._~+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WS = " \t"


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: its scheme as sent, lower-cased parameter names, or a token68."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())

    @property
    def is_bearer(self) -> bool:
        return self.scheme.lower() == "bearer"


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def token(self, chars: frozenset[str] = _TCHAR) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """A quoted-string after its opening quote; an unterminated one runs to the end."""
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                break
            if char == "\\" and self.pos < len(self.text):
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        return "".join(out)


def _param(scan: _Scanner) -> tuple[str, str] | None:
    """An auth-param at the cursor, or ``None`` (cursor unchanged) if there is none."""
    start = scan.pos
    name = scan.token()
    scan.skip(_WS)
    if not name or scan.peek() != "=":
        scan.pos = start
        return None
    scan.pos += 1
    scan.skip(_WS)
    if scan.peek() in (",", "", "="):  # "abc==" is a token68 with padding, not a param
        scan.pos = start
        return None
    if scan.peek() == '"':
        scan.pos += 1
        value = scan.quoted()
    else:
        value = scan.token(_TCHAR | _TOKEN68 | frozenset("=:"))
    return name.lower(), value


def _token68(scan: _Scanner) -> str | None:
    """A token68 standing alone before a comma or the end; cursor unchanged otherwise."""
    start = scan.pos
    value = scan.token(_TOKEN68)
    while scan.peek() == "=":
        scan.pos += 1
        value += "="
    scan.skip(_WS)
    if value and scan.peek() in (",", ""):
        return value
    scan.pos = start
    return None


def parse_challenges(value: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (or several joined with commas)."""
    scan = _Scanner(value)
    challenges: list[Challenge] = []
    while not scan.at_end():
        scan.skip(_WS + ",")
        scheme = scan.token()
        if not scheme:
            if not scan.at_end():
                scan.pos += 1  # garbage: skip a character and try again
            continue
        params: dict[str, str] = {}
        token68 = None
        if scan.peek() in _WS:
            scan.skip(_WS)
            param = _param(scan)
            if param is None:
                token68 = _token68(scan)
            while param is not None:
                params.setdefault(*param)
                scan.skip(_WS)
                if scan.peek() != ",":
                    break
                mark = scan.pos
                scan.skip(_WS + ",")
                param = _param(scan)
                if param is None:
                    scan.pos = mark
        challenges.append(Challenge(scheme, params, token68))
        # Whatever follows that is neither "," nor a new challenge is skipped up to a comma.
        scan.skip(_WS)
        if not scan.at_end() and scan.peek() != ",":
            while not scan.at_end() and scan.peek() != ",":
                if scan.peek() == '"':
                    scan.pos += 1
                    scan.quoted()
                else:
                    scan.pos += 1
    return challenges
