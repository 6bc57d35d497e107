"""How a request carries the key, and whether that is how the API wants it.

A ``Convention`` is one way of sending a key: ``Authorization: Bearer <key>``, a bare key in
``x-api-key``, a query parameter, HTTP Basic. The doctor compares the user's convention
(``--send`` or a ``-H`` header holding ``$KEY``) with the one the provider documents, so a
key sent in the wrong header, with the wrong scheme or without a required version header is
named before any request is made.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from keyturn._providers import KeyType, Provider
from keyturn.doctor.report import Finding, finding

KEY = "$KEY"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a header name
_CANONICAL_SCHEMES = {"bearer": "Bearer", "basic": "Basic", "token": "Token"}
# Headers a key travels in when it is typed literally into -H (curl habit).
_KEY_HEADERS = ("authorization", "x-api-key", "api-key")


@dataclass(frozen=True, slots=True)
class Convention:
    """One way to send a key. ``template`` is a header value with ``$KEY`` for the key."""

    header: str = ""
    template: str = KEY
    query: str = ""
    basic: bool = False
    basic_user: str | None = None  # None: the key is the user name, the password is empty

    @property
    def scheme(self) -> str:
        """The word before the key in the header value ('Bearer'), '' for a bare key."""
        if self.basic:
            return "Basic"
        return self.template.partition(KEY)[0].strip()

    @property
    def name(self) -> str:
        """The ``--send`` spelling, or the header as sent when there is none."""
        if self.query:
            return f"query:{self.query}"
        if self.basic:
            return "basic" if self.basic_user is None else f"basic:{self.basic_user}"
        header = self.header.lower()
        if header == "authorization" and self.template in ("Bearer $KEY", "Token $KEY"):
            return self.template.split()[0].lower()
        if self.template == KEY:
            return "x-api-key" if header == "x-api-key" else f"header:{self.header}"
        return self.describe()

    def describe(self) -> str:
        if self.query:
            return f"?{self.query}=<key>"
        if self.basic:
            user = "<key>:" if self.basic_user is None else f"{self.basic_user}:<key>"
            return f"Authorization: Basic base64({user})"
        return f"{self.header}: {self.template.replace(KEY, '<key>')}"

    def headers(self, key: str) -> list[tuple[str, str]]:
        if self.query:
            return []
        if self.basic:
            pair = f"{key}:" if self.basic_user is None else f"{self.basic_user}:{key}"
            return [("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())]
        return [(self.header, self.template.replace(KEY, key))]

    def url(self, url: str, key: str) -> str:
        if not self.query:
            return url
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k != self.query]
        query.append((self.query, key))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def same_as(self, other: Convention, *, ignore_scheme_case: bool = False) -> bool:
        mine, theirs = self.template, other.template
        if ignore_scheme_case:
            mine, theirs = mine.lower(), theirs.lower()
        return (
            self.header.lower() == other.header.lower()
            and mine == theirs
            and self.query == other.query
            and self.basic == other.basic
            and self.basic_user == other.basic_user
        )


def parse_send(text: str) -> Convention:
    """``bearer``, ``x-api-key``, ``token``, ``basic[:USER]``, ``header:NAME``, ``query:NAME``."""
    kind, colon, arg = text.strip().partition(":")
    kind = kind.lower()
    if kind == "bearer" and not colon:
        return Convention("Authorization", "Bearer $KEY")
    if kind == "token" and not colon:
        return Convention("Authorization", "Token $KEY")
    if kind == "x-api-key" and not colon:
        return Convention("x-api-key")
    if kind == "basic":
        return Convention("Authorization", basic=True, basic_user=arg if colon else None)
    if kind in ("header", "query") and _TOKEN.fullmatch(arg):
        return Convention(arg) if kind == "header" else Convention(query=arg)
    raise ValueError(
        f"--send {text!r} is not one of bearer, x-api-key, token, basic[:USER], header:NAME, "
        "query:NAME"
    )


def documented(
    provider: Provider, key_type: KeyType | None = None, environ: Mapping[str, str] = {}
) -> Convention:
    """How ``provider`` documents sending a key (of ``key_type``, where that differs)."""
    scheme = provider.scheme
    if key_type is not None and key_type.scheme is not None:
        scheme = key_type.scheme
    if scheme.lower() == "basic":
        user: str | None = provider.basic_user or None
        if user and user.startswith("$"):
            user = environ.get(user[1:], "")
        return Convention(provider.header, basic=True, basic_user=user)
    return Convention(provider.header, f"{scheme} {KEY}" if scheme else KEY)


def accepted(
    provider: Provider, key_type: KeyType | None = None, environ: Mapping[str, str] = {}
) -> list[Convention]:
    """Every convention ``provider`` documents, the preferred one first."""
    return [documented(provider, key_type, environ)] + [
        parse_send(alt) for alt in provider.also_accepts
    ]


def split_headers(
    headers: Sequence[tuple[str, str]],
) -> tuple[Convention | None, list[tuple[str, str]]]:
    """(the convention of the first header holding ``$KEY``, the other headers)."""
    convention = None
    rest = []
    for name, value in headers:
        value = value.replace("${KEY}", KEY)
        if convention is None and KEY in value:
            convention = Convention(name, value)
        else:
            rest.append((name, value))
    return convention, rest


def literal_key(
    headers: Sequence[tuple[str, str]], provider: Provider | None
) -> tuple[str, str, Convention, list[tuple[str, str]]] | None:
    """A key typed into a ``-H`` header, curl style: (key, header, convention, others)."""
    names = {*_KEY_HEADERS, provider.header.lower()} if provider else set(_KEY_HEADERS)
    for index, (name, value) in enumerate(headers):
        if name.lower() not in names or KEY in value or not value.strip():
            continue
        scheme, space, rest = value.strip().partition(" ")
        if space and scheme.lower() in ("bearer", "token"):
            key, template = rest.strip(), f"{scheme} {KEY}"
        elif space and scheme.lower() == "basic":
            continue  # user:password pairs are not a key the doctor can take apart
        else:
            key, template = value.strip(), KEY
        others = [h for i, h in enumerate(headers) if i != index]
        return key, name, Convention(name, template), others
    return None


def check_convention(
    sent: Convention,
    provider: Provider | None,
    key_type: KeyType | None,
    header_names: Sequence[str],
    environ: Mapping[str, str] = {},
) -> list[Finding]:
    """Findings about sending the key ``sent``'s way, with ``header_names`` also sent."""
    found: list[Finding] = []
    scheme = sent.scheme
    canonical = _CANONICAL_SCHEMES.get(scheme.lower())
    # Written in another case than RFC 9110 and every API write it: said whatever the API,
    # since gateways that compare it byte for byte answer as if no key had been sent.
    if canonical and scheme != canonical and sent.header.lower() == "authorization":
        found.append(_lowercase(sent, canonical, "RFC 6750 and every API document"))
    if provider is None:
        return found
    ways = accepted(provider, key_type, environ)
    same_but_case = any(sent.same_as(way, ignore_scheme_case=True) for way in ways)
    if not any(sent.same_as(way) for way in ways) and not (same_but_case and found):
        want = ways[0]
        if same_but_case:
            found.append(_lowercase(sent, want.scheme, f"{provider.name} documents"))
        elif sent.header and any(way.header.lower() == sent.header.lower() for way in ways):
            found.append(
                finding(
                    "scheme_wrong",
                    f"{provider.name} reads '{want.describe()}'; the request sends "
                    f"'{sent.describe()}'",
                    f"send '{want.describe()}'",
                )
            )
        else:
            found.append(
                finding(
                    "header_wrong",
                    f"{provider.name} reads the key from '{want.describe()}'; the request "
                    f"sends it as '{sent.describe()}'",
                    f"send '{want.describe()}'",
                )
            )
    have = {n.lower() for n in header_names}
    for name, value in required_headers(provider, environ):
        if name.lower() not in have or value is None:
            found.append(_missing_header(provider, name, value))
    return found


def required_headers(
    provider: Provider | None, environ: Mapping[str, str] = {}
) -> list[tuple[str, str | None]]:
    """(name, value) of each header ``provider`` requires; a value written ``$NAME`` (an
    account id: Algolia's application id) is read from the environment, ``None`` if unset."""
    found: list[tuple[str, str | None]] = []
    for name, value in provider.required_headers if provider else ():
        if value.startswith("$"):
            found.append((name, environ.get(value[1:]) or None))
        else:
            found.append((name, value))
    return found


def _missing_header(provider: Provider, name: str, value: str | None) -> Finding:
    if value is None:
        variable = dict(provider.required_headers)[name][1:]
        return finding(
            "missing_required_header",
            f"{provider.name} requires '{name}' on every request, with the value of "
            f"{variable}, which is not set",
            f"set {variable} (where {provider.name}'s dashboard shows it) and send it as "
            f"'{name}'",
        )
    return finding(
        "missing_required_header",
        f"{provider.name} requires '{name}: {value}' on every request, and the request does "
        "not send it",
        f"add the header '{name}: {value}' (or a newer version the API supports)",
    )


def _lowercase(sent: Convention, canonical: str, authority: str) -> Finding:
    return finding(
        "scheme_lowercase",
        f"the request sends '{sent.describe()}'; {authority} '{canonical}', and some servers "
        "compare the scheme case-sensitively",
        f"write '{sent.header}: {canonical} <key>'",
    )
