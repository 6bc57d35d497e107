"""The property behind every doctor report: the key is never shown, whatever happens.

For any key (any text a source yields: an argument, the environment, the bytes of a key
file) and any answer a server can give (echoing the key in any header or body, in any
encoding, whole or in pieces), no output of the doctor, in any format, contains the key or
any 8 characters of it in a row.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn.doctor import diagnose, render_json, render_markdown, render_text
from keyturn.doctor.scrub import SPELLED, spelled
from tests.doctor.apis import RawApi, RawSeen, raw_answer
from tests.doctor.conftest import fragments

ServeRaw = Callable[..., RawApi]

ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda k: k,
    "percent": lambda k: quote(k, safe=""),
    "percent-path": quote,
    "plus": quote_plus,
    "json": lambda k: json.dumps(k)[1:-1],
    "json-utf8": lambda k: json.dumps(k, ensure_ascii=False)[1:-1],
    "repr": lambda k: repr(k)[1:-1],
    "bytes-repr": lambda k: repr(k.encode("utf-8", "surrogateescape"))[2:-1],
    "hex": lambda k: k.encode("utf-8", "surrogateescape").hex(),
    "latin-1": lambda k: k.encode("utf-8", "surrogateescape").decode("latin-1"),
}


@st.composite
def echoes(draw: st.DrawFn) -> Callable[[str], str]:
    """A way a server writes (part of) the key back: an encoding of it, of a piece of it, or
    of a Basic header's user:key."""
    name = draw(st.sampled_from([*ENCODINGS, "basic"]))
    start = draw(st.integers(0, 12))
    length = draw(st.one_of(st.none(), st.integers(8, 40)))
    user = draw(st.text(st.characters(codec="ascii", exclude_characters=":"), max_size=6))

    def echo(key: str) -> str:
        piece = key[start : start + length] if length else key
        if len(piece) < 8:
            piece = key
        if name == "basic":
            pair = (f"{user}:{piece}" if user else f"{piece}:").encode("utf-8", "replace")
            return "Basic " + base64.b64encode(pair).decode()
        return ENCODINGS[name](piece)

    return echo


@st.composite
def answers(draw: st.DrawFn) -> Callable[[str, int], bytes]:
    """Any answer a server can give, built around the key it was sent."""
    status = draw(st.sampled_from([200, 301, 302, 307, 400, 401, 403, 404, 429, 500]))
    in_headers = draw(st.lists(st.tuples(
        st.sampled_from(["X-Echo", "WWW-Authenticate", "Location", "X-Error", "Retry-After",
                         "Content-Type"]),
        echoes(),
    ), max_size=3))
    body_paths = draw(st.lists(st.sampled_from(
        ["error.message", "message", "detail", "error_description", "errors.0.message",
         "error", "title", "msg"]), max_size=3))
    body_echo = draw(echoes())
    plain = draw(st.booleans())
    filler = draw(st.integers(0, 400))

    def build(key: str, port: int) -> bytes:
        headers: list[tuple[str, str | bytes]] = []
        for name, echo in in_headers:
            value = echo(key)
            if name == "WWW-Authenticate":
                value = f'Bearer realm="api", error="invalid_token", error_description="{value}"'
            elif name == "Location":
                value = f"http://127.0.0.1:{port}/next?key={value}"
            headers.append((name, value.encode("utf-8", "surrogateescape").replace(
                b"\r", b" ").replace(b"\n", b" ")))
        text = "x" * filler + " " + body_echo(key)
        if plain:
            body = text.encode("utf-8", "surrogateescape")
            headers.append(("Content-Type", "text/plain"))
        else:
            data: dict[str, Any] = {}
            for path in body_paths or ["message"]:
                head, _, rest = path.partition(".")
                data[head] = {rest: text} if rest and not rest[0].isdigit() else (
                    [{"message": text}] if rest else text)
            body = json.dumps(data).encode()
            headers.append(("Content-Type", "application/json"))
        return raw_answer(status, headers, body)

    return build


# Mostly keys a client can send (so the server has something to echo), some that it cannot.
_SENDABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=8,
                    max_size=80)
_ANY = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=8, max_size=80)
KEYS = st.one_of(_SENDABLE, _SENDABLE, _SENDABLE, _ANY).filter(lambda k: len(k.strip()) >= 8)


@st.composite
def sources(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(the key as its source yields it, the diagnose arguments that read it there)."""
    where = draw(st.sampled_from(["argument", "environment", "file", "dotenv", "header"]))
    if where in ("file", "dotenv"):
        data = draw(st.one_of(KEYS.map(str.encode), st.binary(min_size=8, max_size=100)))
        if where == "dotenv":
            data = b"API_KEY=" + data.replace(b"\n", b"").replace(b"\r", b"") + b"\n"
            return "", {"dotenv": data}  # the key is what python-dotenv reads
        key = data.decode("utf-8", errors="replace").removesuffix("\n")
        return key, {"key_file": data}
    key = draw(KEYS if where != "environment" else KEYS.filter(lambda k: "\x00" not in k))
    if where == "argument":
        return key, {"key": key}
    if where == "header":  # typed into -H, curl style
        key = draw(KEYS.filter(lambda k: k == k.strip() and " " not in k))
        return key, {"headers": [("Authorization", f"Bearer {key}")]}
    return key, {"environ": {"API_KEY": key}}


def test_no_output_shows_the_key_whatever_the_key_and_the_answer(
    serve_raw: ServeRaw, tmp_path: Path
) -> None:
    current: list[Callable[[int], bytes]] = []
    api = serve_raw(lambda seen, write: write(current[0](api.port)))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sources(), answers(), st.sampled_from([None, "bearer", "basic", "basic:u",
                                                  "x-api-key", "query:key"]),
           st.booleans())
    def check(source: tuple[str, dict[str, Any]], answer: Callable[[str, int], bytes],
              send_as: str | None, variants: bool) -> None:
        key, arguments = source
        if "key_file" in arguments:
            path = tmp_path / "key"
            path.write_bytes(arguments["key_file"])
            arguments = {"key_file": path}
        if "dotenv" in arguments:
            path = tmp_path / "keys.env"
            path.write_bytes(arguments["dotenv"])
            try:
                key = dotenv_values(path).get("API_KEY") or ""
            except UnicodeDecodeError:
                key = ""  # unreadable: a finding, and no key (still, nothing may crash)
            arguments = {"dotenv": path, "environ": {}}
        current[:] = [lambda port: answer(key, port)]
        report = diagnose(api.url("/v1/me"), send_as=send_as, try_other_ways=variants,
                          use_keyring=False, timeout=5, **arguments)
        shown = "\n".join([render_json(report), render_text(report), render_markdown(report)])
        leaked = sorted(f for f in fragments(key) if f in shown)
        assert (len(key.strip()) < 8 or key not in shown) and not leaked, leaked[:3]

    check()


def _never_sent_anywhere_else(seen: RawSeen) -> None:
    raise AssertionError(f"another origin got a request: {seen.head[:80]!r}")


def test_the_key_reaches_no_origin_but_the_target(serve_raw: ServeRaw) -> None:
    """Redirects anywhere else are reported, never followed with the key."""
    key = "0123456789abcdefABCDEF0123"
    elsewhere = serve_raw(lambda seen, write: _never_sent_anywhere_else(seen))
    target = serve_raw(lambda seen, write: write(raw_answer(
        307, [("Location", elsewhere.url("/stolen"))], b"")))
    for send_as in (None, "x-api-key", "basic", "query:key"):
        report = diagnose(target.url("/"), key=key, send_as=send_as, try_other_ways=True,
                          use_keyring=False)
        assert "redirect_dropped_auth" in report.codes
    assert elsewhere.seen == []


DISGUISES: dict[str, Callable[[str], str]] = {
    "html-entities": lambda k: "".join(f"&#{ord(c)};" for c in k),
    "hex-entities": lambda k: "".join(f"&#x{ord(c):x};" for c in k),
    "upper-case": str.upper,
    "groups-of-four": lambda k: "-".join(k[i : i + 4] for i in range(0, len(k), 4)),
    "spaced": " ".join,
    "full-width": lambda k: "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in k),
    "json-escaped": lambda k: "".join(f"\\u{ord(c):04x}" for c in k),
}


def test_no_output_spells_out_the_key_in_a_form_no_mask_knows(serve_raw: ServeRaw) -> None:
    """A server that writes the key back spelled some other way (as an HTML page's
    entities, upper-cased, in groups of four, ...) shares no 8 characters in a row with any
    listed form of it, so the scrubber passed it, and the report held the whole key for
    anyone who reads it as written. Such a header or body is not shown."""
    key = "sk-proj-Q7vLm2XcR9tWb4KpZs1N8yHd3FgJ6eUa0oIi5"
    secret = spelled(key.removeprefix("sk-proj-"))
    runs = {secret[i : i + SPELLED] for i in range(len(secret) - SPELLED + 1)}
    for name, disguise in DISGUISES.items():
        echo = disguise(key)
        body = json.dumps({"error": {"message": f"Invalid API key: {echo}"}}).encode()
        body = body.replace(b"\\\\u", b"\\u")  # the JSON-escaped form, as a server writes it
        answer = raw_answer(401, [("X-Echo", echo.encode()), ("Content-Type", "application/json")],
                            body)  # fmt: skip
        api = serve_raw(lambda seen, write, answer=answer: write(answer))
        report = diagnose(api.url("/v1/me"), key=key, use_keyring=False, timeout=5)
        for shown in (render_json(report), render_text(report), render_markdown(report)):
            read = spelled(shown)
            assert not [run for run in runs if run in read], name
        assert "invalid_key" in render_json(report) or "401" in render_text(report), name


def test_no_redirect_target_spells_out_the_key(serve_raw: ServeRaw) -> None:
    """The redirects a report lists (followed, refused as leaving the host, or unreadable)
    are the server's text as much as its headers: a ``Location`` holding the key spelled
    another way is not shown."""
    key = "sk-proj-Q7vLm2XcR9tWb4KpZs1N8yHd3FgJ6eUa0oIi5"
    secret = spelled(key.removeprefix("sk-proj-"))
    runs = {secret[i : i + SPELLED] for i in range(len(secret) - SPELLED + 1)}
    upper = key.upper()
    for location in (f"/login?token={upper}", f"http://elsewhere.example/?t={upper}",
                     f"http://[/{upper}"):  # fmt: skip

        def answer(seen: RawSeen, write: Callable[[bytes], None], location: str = location) -> None:
            if seen.head.startswith(b"GET /v1/me "):
                write(raw_answer(302, [("Location", location.encode())], b""))
            else:
                write(raw_answer(401, [("Content-Type", "text/plain")], b"no"))

        api = serve_raw(answer)
        report = diagnose(api.url("/v1/me"), key=key, use_keyring=False, timeout=5)
        for shown in (render_json(report), render_text(report), render_markdown(report)):
            read = spelled(shown)
            assert not [run for run in runs if run in read], location
        assert "302" in render_json(report), location
