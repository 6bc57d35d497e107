"""One emulator engine for every catalogued API, driven by the answers providers.toml documents.

Each ``[[provider]]`` entry carries ``[provider.answers]``: the path to probe and, for each
case, the status, headers and body the API's documentation (or its public issue threads)
shows: ``ok``, ``no_key`` (also what a key sent in the wrong place gets), ``bad_key``,
``wrong_way`` (when a key in the wrong place gets something else), ``no_version`` (an API
with a required header), ``permission`` and any ``more.<name>`` answers for a valid key
that may not do this. The engine reads the raw TOML itself, not keyturn's parse of it, so a
misreading in keyturn is not mirrored here; it finds the key the way the entry documents
(header and scheme, the other ways it accepts, HTTP Basic, a query parameter) and answers
with the case that applies. No provider has code of its own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from keyturn._providers import entries
from tests.doctor.apis import Reply, Seen

ENTRIES: dict[str, dict[str, Any]] = {e["id"]: e for e in entries()}


@dataclass(frozen=True)
class Way:
    """One way an API takes the key: a header with a scheme, Basic, or a query parameter."""

    header: str = ""
    scheme: str = ""  # "" for the bare key
    basic_user: str | None = None  # for Basic: the user name, None when the key is the user
    basic: bool = False
    query: str = ""


def _user(entry: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    user = entry.get("basic_user", "")
    if user.startswith("$"):
        return env.get(user[1:], "")
    return user or None


def ways(entry: Mapping[str, Any], env: Mapping[str, str]) -> list[Way]:
    """Every way ``entry`` documents, read from the TOML as written."""
    header, scheme = entry.get("header", "Authorization"), entry.get("scheme", "Bearer")
    found = []
    schemes = {scheme} | {t["scheme"] for t in entry.get("key_type", ()) if "scheme" in t}
    for each in schemes:
        if each.lower() == "basic":
            found.append(Way(header, basic=True, basic_user=_user(entry, env)))
        else:
            found.append(Way(header, each))
    for alt in entry.get("also_accepts", ()):
        kind, colon, arg = alt.partition(":")
        if kind in ("bearer", "token"):
            found.append(Way("Authorization", kind.capitalize()))
        elif kind == "x-api-key":
            found.append(Way("x-api-key"))
        elif kind == "header":
            found.append(Way(arg))
        elif kind == "query":
            found.append(Way(query=arg))
        elif kind == "basic":
            found.append(Way("Authorization", basic=True, basic_user=arg if colon else None))
    if entry.get("query_param"):
        found.append(Way(query=entry["query_param"]))
    return found


def _key_in(way: Way, req: Seen) -> str | None:
    if way.query:
        values = dict(parse_qsl(urlsplit(req.path).query))
        return values.get(way.query)
    value = req.header(way.header)
    if value is None:
        return None
    if way.basic:
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(token).decode().partition(":")
        except ValueError:
            return None
        if way.basic_user is None:
            return user if not password else None
        return password if user == way.basic_user else None
    if not way.scheme:
        return value
    scheme, space, token = value.partition(" ")
    return token if space and scheme.lower() == way.scheme.lower() else None


# Headers a key may have been put in by mistake: the emulated API sees "a key, wrongly".
_KEYISH = ("authorization", "x-api-key", "api-key", "x-api-token")


@dataclass
class Emulator:
    """An API as ``providers.toml`` documents it, for one valid key."""

    provider: str
    key: str
    env: Mapping[str, str] = field(default_factory=dict)
    deny: str | None = None  # "permission" or a "more" answer: the key may not do this
    served: list[str] = field(default_factory=list)  # the case each request got

    @property
    def entry(self) -> dict[str, Any]:
        return ENTRIES[self.provider]

    @property
    def answers(self) -> dict[str, Any]:
        answers: dict[str, Any] = self.entry["answers"]
        return answers

    def case(self, req: Seen) -> str:
        keys = [k for k in (_key_in(w, req) for w in ways(self.entry, self.env)) if k]
        if not keys:
            wrongly = any(req.header(h) for h in _KEYISH) or "?" in req.path
            return "wrong_way" if wrongly and "wrong_way" in self.answers else "no_key"
        for name, value in self.entry.get("required_headers", {}).items():
            value = self.env.get(value[1:], "") if value.startswith("$") else value
            if req.header(name) != value:  # absent, or Accept: */* for a media type
                return "no_version"
        if self.key not in keys:
            return "bad_key"
        if self.deny:
            return self.deny
        return "ok"

    def answer(self, case: str) -> dict[str, Any]:
        if case == "ok":
            return dict(self.answers.get("ok", {"status": 200, "body": "{}"}))
        if case in self.answers and case != "more":
            return dict(self.answers[case])
        return dict(self.answers["more"][case])

    def __call__(self, req: Seen) -> Reply:
        case = self.case(req)
        self.served.append(case)
        answer = self.answer(case)
        body = answer.get("body", "")
        body = body.replace("{key_head}", self.key[:8]).replace("{key_tail}", self.key[-4:])
        headers = list(answer.get("headers", {}).items())
        if body and not any(n.lower() == "content-type" for n, _ in headers):
            try:
                json.loads(body)
                headers.append(("Content-Type", "application/json"))
            except ValueError:
                headers.append(("Content-Type", "text/plain"))
        return Reply(answer["status"], body.encode(), headers)
