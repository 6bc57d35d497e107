"""Find the key in a request's headers and query string (sans-I/O).

The reader looks at plain values only — a list of header pairs and a query string — so
every framework, the forward-auth endpoint and ``keyturn check`` share it. Each way a
request can carry a key wrongly ends in its own catalogued code with a hint for that exact
mistake, because "401 Unauthorized" alone costs people hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from keyturn._header_spellings import spellings
from keyturn._query_names import QueryNames

HeaderName = str | bytes
HeaderPairs = Iterable[tuple[HeaderName, HeaderName]]

DEFAULT_API_KEY_HEADERS = ("x-api-key",)
DEFAULT_QUERY_PARAMS = ("api_key", "apikey", "api-key", "access_token", "x-api-key", "key")

# RFC 6750 §2.1 b64token: the characters a bearer token may contain.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SEND_INSTEAD = "send 'Authorization: Bearer <key>' or the bare key in '{header}: <key>'"


class Presented(NamedTuple):
    """A key found in the request, and where (never printed: see ``keyturn.keys.mask``)."""

    key: str
    source: str

    def __repr__(self) -> str:
        from keyturn.keys import mask

        return f"Presented(key={mask(self.key)!r}, source={self.source!r})"


@dataclass(frozen=True, slots=True)
class Rejection:
    """The request's credentials are unusable; ``code`` is a catalogue code."""

    code: str
    detail: str
    hint: str = ""


def _text(value: HeaderName) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


# What a header name is to the ASGI fast path (``CredentialReader.asgi_names``).
AUTHORIZATION, API_KEY, RESPELLED = 0, 1, 2


def _looks_quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"


class CredentialReader:
    """Reads one key from a request, or says precisely what is wrong with what was sent."""

    __slots__ = (
        "_api_key_headers",
        "_key_headers_b",
        "_query_names",
        "_respelled",
        "allow_query",
        "query_params",
    )

    def __init__(
        self,
        api_key_headers: Sequence[str] = DEFAULT_API_KEY_HEADERS,
        *,
        query_params: Sequence[str] = DEFAULT_QUERY_PARAMS,
        allow_query: bool = False,
    ) -> None:
        self._api_key_headers = tuple(h.lower() for h in api_key_headers)
        self._respelled = {
            spelling: header
            for header in self._api_key_headers
            for spelling in spellings(header)
            if spelling not in self._api_key_headers
        }
        self._key_headers_b: dict[bytes, int] = {
            **{name.encode("latin-1"): RESPELLED for name in self._respelled},
            **{name.encode("latin-1"): API_KEY for name in self._api_key_headers},
            b"authorization": AUTHORIZATION,
        }
        self.query_params = tuple(query_params)
        self._query_names = QueryNames(self.query_params)
        self.allow_query = allow_query

    @property
    def api_key_headers(self) -> tuple[str, ...]:
        return self._api_key_headers

    def read(self, headers: HeaderPairs, query: str | bytes = "") -> Presented | Rejection:
        """Headers may be ``str`` or ``bytes`` pairs, names in any case."""
        authorization: list[str] = []
        api_keys: list[tuple[str, str]] = []
        names = self._api_key_headers
        for raw_name, raw_value in headers:
            name = (
                raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
            ).lower()
            if name == "authorization":
                authorization.append(_text(raw_value))
            elif name in names:
                api_keys.append((name, _text(raw_value)))
            elif name in self._respelled:
                header = self._respelled[name]
                return Rejection(
                    "malformed_credentials",
                    f"the request has a header named {name}: some servers read it as "
                    f"{header}, others as another header or not at all",
                    f"send the key in '{header}: <key>' (spelled as here) or in "
                    "'Authorization: Bearer <key>'",
                )
        return self._decide(authorization, api_keys, query)

    @property
    def asgi_names(self) -> dict[bytes, int]:
        """Every header name the ASGI fast path (``KeyManager.verify_asgi``) must stop at,
        as ASGI spells it (lower-case bytes), and what it is: ``AUTHORIZATION``, ``API_KEY``
        or ``RESPELLED`` (a key header spelled another way, which ``read`` refuses). One
        dict lookup per header keeps the fast path's loop as short as the plain case needs.

        The fast path reads the plain way only: exactly one ``Authorization: Bearer <key>``
        or key header, and no key in the query (``may_hold_key``). Anything else goes
        through ``read``, which explains the mistake."""
        return self._key_headers_b

    def may_hold_key(self, query: bytes) -> bool:
        """Whether some upstream may read a key parameter in ``query``: ``read`` judges it."""
        return self._query_names.mentions(query)

    def _decide(
        self, authorization: list[str], api_keys: list[tuple[str, str]], query: str | bytes
    ) -> Presented | Rejection:
        found: Presented | None = None
        if authorization:
            if len(authorization) > 1:
                return Rejection(
                    "conflicting_credentials",
                    "the request has more than one Authorization header",
                    "send a single Authorization header; look for a default header set on your "
                    "HTTP client or added by a proxy",
                )
            bearer = self._bearer(authorization[0])
            if isinstance(bearer, Rejection):
                return bearer
            found = bearer
        if api_keys:
            if len(api_keys) > 1:
                return Rejection(
                    "conflicting_credentials",
                    f"the request has more than one {api_keys[0][0]} header",
                    "send the key once",
                )
            header_key = self._api_key(*api_keys[0])
            if isinstance(header_key, Rejection):
                return header_key
            if found is not None and found.key != header_key.key:
                return Rejection(
                    "conflicting_credentials",
                    f"the Authorization header and the {header_key.source} header hold "
                    "different keys",
                    "send one key in one header; remove the other",
                )
            found = found or header_key
        params = self._query_params(query) if query else []
        if params and not self.allow_query:
            return Rejection(
                "credentials_in_query",
                f"a key was sent in the query parameter '{params[0][0]}'",
                "send it in the Authorization: Bearer header instead, and rotate the "
                "key: URLs are written to logs, so treat it as leaked",
            )
        for name, value in params:
            in_query = self.parse_token(value, f"query:{name}", f"the query parameter {name}")
            if isinstance(in_query, Rejection):
                return in_query
            if found is not None and found.key != in_query.key:
                detail = "the query string and a header hold different keys"
                if found.source.startswith("query:"):
                    detail = "the query string holds different keys in its key parameters"
                return Rejection(
                    "conflicting_credentials", detail, "send one key, in the Authorization header"
                )
            found = found or in_query
        if found is None:
            return Rejection(
                "missing_credentials",
                "the request carries no Authorization: Bearer header and no "
                f"{self._api_key_headers[0] if self._api_key_headers else 'API-key'} header",
                "send 'Authorization: Bearer <key>'; if the key comes from an environment "
                "variable, check it is set where the request is made",
            )
        return found

    def _bearer(self, value: str) -> Presented | Rejection:
        value = value.strip(" \t")
        scheme, space, rest = value.partition(" ")
        if scheme.lower() != "bearer":
            alt = self._api_key_headers[0] if self._api_key_headers else "x-api-key"
            if not value:
                return Rejection(
                    "malformed_credentials",
                    "the Authorization header is empty",
                    "the variable holding the key is probably empty; "
                    + _SEND_INSTEAD.format(header=alt),
                )
            if not space:
                return Rejection(
                    "unsupported_scheme",
                    "the Authorization header holds a value with no scheme in front of it",
                    "put 'Bearer ' before the key: " + _SEND_INSTEAD.format(header=alt),
                )
            # A long first word is no scheme but a key or part of one: not echoed, not even
            # cut short (its first 20 characters were most of a key's secret part).
            named = f"scheme '{scheme}'" if len(scheme) <= 20 and scheme.isascii() else "scheme"
            return Rejection(
                "unsupported_scheme",
                f"the Authorization {named} is not supported here; only 'Bearer' is",
                _SEND_INSTEAD.format(header=alt),
            )
        token = rest.lstrip(" ")
        if not token:
            return Rejection(
                "malformed_credentials",
                "the Authorization header says 'Bearer' but no key follows",
                "the variable holding the key is probably empty or unset where the request "
                "is built",
            )
        return self.parse_token(token, "authorization", "Authorization: Bearer")

    def _api_key(self, header: str, value: str) -> Presented | Rejection:
        value = value.strip(" \t")
        if not value:
            return Rejection(
                "malformed_credentials",
                f"the {header} header is empty",
                "the variable holding the key is probably empty or unset",
            )
        scheme, space, _ = value.partition(" ")
        if space and scheme.lower() in ("bearer", "token", "basic", "api-key", "apikey"):
            return Rejection(
                "malformed_credentials",
                f"the {header} header holds '{scheme} <key>', but it takes the bare key",
                f"send '{header}: <key>' without '{scheme} ', or use 'Authorization: Bearer <key>'",
            )
        return self.parse_token(value, header, header)

    @staticmethod
    def parse_token(token: str, source: str, where: str) -> Presented | Rejection:
        if _B64TOKEN.fullmatch(token):
            return Presented(token, source)
        if _looks_quoted(token):
            return Rejection(
                "malformed_credentials",
                f"the key in {where} is wrapped in quotes",
                "remove the quotes: they were probably copied from a .env file or JSON",
            )
        first = token.partition(" ")[0]
        if first.lower() == "bearer":
            return Rejection(
                "malformed_credentials",
                f"the word 'Bearer' appears twice in {where}",
                "the key variable already contains 'Bearer '; send 'Authorization: Bearer <key>' "
                "with the bare key",
            )
        if any(c in token for c in " \t\r\n"):
            return Rejection(
                "malformed_credentials",
                f"the key in {where} contains whitespace or a line break",
                "strip the key: a trailing newline often comes from `echo KEY >> .env` or "
                "reading a file",
            )
        return Rejection(
            "malformed_credentials",
            f"the key in {where} contains characters a token may not contain",
            "a key is made of letters, digits and - . _ ~ + / only; copy it again",
        )

    def _query_params(self, query: str | bytes) -> list[tuple[str, str]]:
        """Every credential parameter of the query with a value, in order: each is a key
        sent, and two different ones are two credentials (an upstream may read either).
        A parameter is one when some upstream reads it as one (``keyturn._query_names``):
        ``access%5Ftoken``, ``x=1;access_token`` and PHP's ``access.token`` are."""
        text = _text(query)
        if not self._query_names.mentions(text.encode("latin-1", "replace")):
            return []
        pairs = self._query_names.pairs(text)
        return [(name, value.strip()) for name, value in pairs if value.strip()]
