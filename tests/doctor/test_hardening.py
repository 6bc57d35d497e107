"""The doctor against inputs and servers that try to make it show the key, hang or crash.

Each test runs `keyturn doctor` (or its library call) against real loopback servers that
answer the way a hostile or broken server can: echoing the key in pieces and encodings,
trickling, redirecting to nonsense, writing escape sequences.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result

from keyturn.cli import main
from keyturn.doctor import diagnose, render_json, render_markdown, render_text
from keyturn.doctor.report import Report
from tests.doctor.apis import (
    Api,
    RawApi,
    RawRespond,
    RawSeen,
    Reply,
    Respond,
    Seen,
    openai_like,
    raw_answer,
    rfc6750_bearer,
)
from tests.doctor.conftest import assert_hidden, openai_key

Serve = Callable[[Respond], Api]
ServeRaw = Callable[..., RawApi]
FORMATS = ("text", "json", "markdown")


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["doctor", *args], env=env, input=stdin)


def every_format(*args: str, env: dict[str, str] | None = None) -> list[Result]:
    return [run(*args, "--format", fmt, env=env) for fmt in FORMATS]


def rendered(report: Report) -> str:
    return "\n".join([render_json(report), render_text(report), render_markdown(report)])


# -- 6. a key with a line break -------------------------------------------------------------


def test_a_key_file_with_a_comment_line_is_never_printed_nor_sent(
    serve: Serve, tmp_path: Path
) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    path = tmp_path / "openai.key"
    path.write_text(f"{key}\n# my OpenAI key, made 2025-01-02\n")
    for result in every_format(api.url("/v1/models"), "--provider", "openai",
                               "--key-file", str(path)):
        assert result.exit_code == 1, result.output
        assert "key_whitespace" in result.stdout
        assert_hidden(result.output, key, key + "\n# my OpenAI key")
    assert api.seen == []  # no client can send it; the doctor does not try


def test_a_line_break_inside_a_variable_is_named_not_printed(serve: Serve) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    value = key[:20] + "\r\n" + key[20:]
    for result in every_format(api.url("/"), "--provider", "openai",
                               env={"OPENAI_API_KEY": value}):
        assert "key_whitespace" in result.stdout and "line break" in result.stdout
        assert_hidden(result.output, key, value)
    assert api.seen == []


# -- 7. every encoding, every piece ---------------------------------------------------------


def test_an_echo_cut_by_a_length_limit_is_still_scrubbed(serve: Serve) -> None:
    key = "0123456789abcdefghijABCDEFGHIJklmnopqrst"

    def echo(req: Seen) -> Reply:
        token = (req.header("authorization") or "").removeprefix("Bearer ")
        # the doctor quotes at most 300 characters: the echo ends 12 characters into the key
        return Reply(401, {"message": "x" * 287 + " " + token})

    api = serve(echo)
    report = diagnose(api.url("/"), key=key)
    assert "server_rejected_key" in report.codes
    assert_hidden(rendered(report), key)


@pytest.mark.parametrize("user", ["", "api", "ab", "acct_1234"])
def test_an_echoed_basic_header_is_scrubbed_whatever_the_user(serve: Serve, user: str) -> None:
    key = "sk_test_0123456789abcdefghijABCDEFGHIJ"

    def echo(req: Seen) -> Reply:
        return Reply(401, {"message": f"bad credentials: {req.header('authorization')}"},
                     [("X-Debug-Auth", req.header("authorization") or "")])

    api = serve(echo)
    report = diagnose(api.url("/"), key=key, send_as=f"basic:{user}" if user else "basic")
    text = rendered(report)
    pair = f"{user}:{key}" if user else f"{key}:"
    sent = base64.b64encode(pair.encode()).decode()
    assert api.seen[0].header("authorization") == f"Basic {sent}"
    before = len(user) + 1 if user else 0  # "user:" precedes the key
    keys_part = sent[-(-8 * before // 6) : 8 * (before + len(key)) // 6]  # the key's bits only
    assert_hidden(text, key, keys_part)


@pytest.mark.parametrize(
    "encode",
    [quote, lambda k: quote(k, safe=""), lambda k: json.dumps(k)[1:-1],
     lambda k: k.encode().hex(), lambda k: k[5:31], lambda k: k[:12] + "…" + k[-12:]],
    ids=["percent", "percent-all", "json", "hex", "middle", "both-ends"],
)
def test_an_echo_in_another_encoding_is_scrubbed(
    serve: Serve, encode: Callable[[str], str]
) -> None:
    key = "sk-proj-AbCdEf/GhIjKl+MnOpQr=StUvWx\"YzAbCd"
    api = serve(lambda req: Reply(401, {"error": {"message": f"invalid key {encode(key)}"}}))
    report = diagnose(api.url("/"), key=key, send_as="header:X-Key")
    assert_hidden(rendered(report), key, encode(key))


def test_a_url_password_and_a_key_in_a_redirect_are_not_listed(serve: Serve) -> None:
    key = "0123456789abcdefABCDEFghijklmn"
    inner = rfc6750_bearer(key)
    holder: list[Api] = []

    def respond(req: Seen) -> Reply:
        if req.path.startswith("/old"):
            port = holder[0].origin.rsplit(":", 1)[1]
            return Reply(307, None, [(
                "Location", f"http://admin:s3cretpassw0rd@127.0.0.1:{port}/new?token={key}")])
        return inner(req)

    api = serve(respond)
    holder.append(api)
    report = diagnose(api.url("/old"), key=key)
    assert report.ok
    assert report.probe is not None and len(report.probe.redirects) == 1
    text = rendered(report)
    assert "s3cretpassw0rd" not in text and "admin:" not in text
    assert_hidden(text, key)
    assert api.seen[1].header("authorization") == f"Bearer {key}"  # userinfo never sent


# -- 8. credentials in the URL --------------------------------------------------------------


def test_url_userinfo_does_not_replace_the_key_and_is_reported(serve: Serve) -> None:
    key = openai_key()
    api = serve(openai_like(key))
    url = api.url("/v1/models").replace("http://", "http://alice:hunter2hunter2@")
    result = run(url, "--provider", "openai", "--format", "json",
                 env={"OPENAI_API_KEY": key})
    data = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert api.seen[0].header("authorization") == f"Bearer {key}"
    assert data["probe"]["sent_as"] == "Authorization: Bearer <key>"
    assert "url_credentials" in [f["code"] for f in data["findings"]]
    assert "hunter2hunter2" not in result.output and "alice" not in result.output
    assert_hidden(result.output, key)


def test_url_userinfo_alone_is_sent_as_basic_and_said_so(serve: Serve) -> None:
    key = "sk_test_0123456789abcdefghijABCDEFGHIJ"

    def stripe_like(req: Seen) -> Reply:
        expected = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        ok = req.header("authorization") == expected
        return Reply(200 if ok else 401, {"object": "list"} if ok else {"error": {}})

    api = serve(stripe_like)
    url = api.url("/v1/charges").replace("http://", f"http://{key}:@")
    result = run(url, "--format", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert data["probe"]["sent_as"] == "Authorization: Basic base64(<key>:)"
    assert data["key_source"] == "the URL's user"
    assert "url_credentials" in [f["code"] for f in data["findings"]]
    assert_hidden(result.output, key)


# -- 9. --timeout bounds the whole probe ----------------------------------------------------


TRICKLED = b"HTTP/1.1 401 X\r\nContent-Length: 100000\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"


def _trickle_body(seen: RawSeen, write: Callable[[bytes], None]) -> None:
    write(TRICKLED)
    for _ in range(100000):
        write(b"x")
        time.sleep(0.05)


def _trickle_headers(seen: RawSeen, write: Callable[[bytes], None]) -> None:
    for byte in TRICKLED:
        write(bytes([byte]))
        time.sleep(0.05)


@pytest.mark.parametrize("respond", [_trickle_body, _trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_cannot_outlast_the_timeout(
    serve_raw: ServeRaw, respond: RawRespond
) -> None:
    api = serve_raw(respond)
    started = time.monotonic()
    result = run(api.url("/"), "--key-stdin", "--timeout", "1", "--format", "json",
                 stdin="0123456789abcdefABCDEF\n")
    elapsed = time.monotonic() - started
    # the server would trickle for over an hour; the bound is generous for a loaded machine
    assert elapsed < 30, f"the probe ran {elapsed:.1f} s with --timeout 1"
    findings = json.loads(result.stdout)["findings"]
    failed = [f for f in findings if f["code"] == "connection_failed"]
    assert failed and "within 1 s" in failed[0]["detail"]


# -- 10. what used to crash is a finding ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "named"),
    [("sk-proj–0123456789abcdefghijABCDEF", "U+2013 EN DASH (in place of '-'?)"),
     ("sk-proj-0123456789abcdéfghijABCDEF", "U+00E9"),
     ("sk-proj-0123456789abc\x1bdefghijABCDEF", "U+001B")],
)
def test_a_key_no_header_can_carry_is_a_finding_not_a_crash(
    serve: Serve, value: str, named: str
) -> None:
    api = serve(openai_like(openai_key()))
    result = run(api.url("/"), "--key-stdin", "--format", "json", stdin=value)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    found = [f for f in data["findings"] if f["code"] == "key_invalid_characters"]
    assert found and named in found[0]["detail"]
    assert data["steps"][3]["status"] == "skipped"
    assert api.seen == []
    assert_hidden(result.output, value)


@pytest.mark.parametrize("location", ["http://127.0.0.1:99999999/x", "http://[::1/x",
                                      "http://api.example.com:80:80/", "//h:-1/"])
def test_a_broken_location_is_a_finding_about_the_server(serve: Serve, location: str) -> None:
    api = serve(lambda req: Reply(302, None, [("Location", location)]))
    result = run(api.url("/"), "--key-stdin", "--format", "json",
                 stdin="0123456789abcdefABCDEF")
    assert result.exit_code == 1, result.output
    assert result.stderr == ""
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert "redirect_invalid" in codes


# -- 11. a server's escape sequences never reach the terminal -------------------------------


def test_escape_sequences_from_the_server_are_shown_not_obeyed(serve: Serve) -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202eevil\x9b"
    api = serve(lambda req: Reply(401, {"message": hostile},
                                  [("WWW-Authenticate", 'Bearer error_description="\x1b[5m"')]))
    for fmt in ("text", "markdown"):
        result = run(api.url("/"), "--key-stdin", "--format", fmt,
                     stdin="0123456789abcdefABCDEF")
        for char in ("\x1b", "\x07", "\u202e", "\x9b"):
            assert char not in result.stdout
        assert "\\x1b" in result.stdout and "pwned" in result.stdout
    data = run(api.url("/"), "--key-stdin", "--format", "json",
               stdin="0123456789abcdefABCDEF").stdout
    assert "\x1b" not in data and "\x9b" not in data and "\u202e" not in data


# -- 12. loopback names and bounded key sources ---------------------------------------------


def test_a_localhost_name_is_reached_on_loopback_whatever_dns_says(
    serve_raw: ServeRaw, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "0123456789abcdefABCDEF"
    ok = raw_answer(200, [("Content-Type", "application/json")], b'{"ok": true}')
    honest = serve_raw(lambda seen, write: write(ok))
    elsewhere = serve_raw(lambda seen, write: write(ok), "127.0.0.2", honest.port)
    resolve = socket.getaddrinfo

    def hostile_resolver(host: object, *args: object, **kwargs: object) -> object:
        if isinstance(host, str) and host.endswith("localhost"):
            host = "127.0.0.2"  # a resolver that sends *.localhost to another machine
        return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hostile_resolver)
    report = diagnose(honest.url("/me", host="api.localhost"), key=key)
    assert report.ok
    assert honest.received(key) and honest.seen[0].header("host") == (
        f"api.localhost:{honest.port}")
    assert elsewhere.seen == []


@pytest.mark.parametrize("how", ["--key-file", "--key-stdin"])
def test_an_endless_key_source_is_refused_in_one_line(how: str) -> None:
    args = [sys.executable, "-m", "keyturn", "doctor", "https://api.example.com/", "--no-probe"]
    with open("/dev/zero", "rb") as zero:
        if how == "--key-file":
            done = subprocess.run([*args, how, "/dev/zero"], capture_output=True, timeout=60)
        else:
            done = subprocess.run([*args, how], stdin=zero, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("error: ") and b"64 KiB" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and b"MemoryError" not in done.stderr


def test_a_bad_header_is_refused_without_echoing_the_key() -> None:
    key = openai_key()
    result = run("https://api.openai.com/v1/models", "-H", f"Authorization Bearer {key}")
    assert result.exit_code == 2
    assert "bad header" in result.stderr
    assert_hidden(result.output, key)


def test_a_bad_url_is_refused_without_echoing_a_key_in_it() -> None:
    key = "AIza" + "Sy0Example0Key0For0Tests00000000000"
    result = run(f"https://generativelanguage.googleapis.com:99999/v1?key={key}", "--no-probe")
    assert result.exit_code == 2 and "port" in result.stderr
    assert_hidden(result.output, key)


def test_a_dotenv_that_is_not_utf8_is_a_finding_not_a_crash(world: Path) -> None:
    key = openai_key()
    (world / ".env").write_bytes(b"OPENAI_API_KEY=" + key.encode() + b"\nNAME=caf\xe9\n")
    result = run("https://api.openai.com/v1/models", "--no-probe", "--format", "json")
    assert result.exit_code == 1, result.output
    found = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "dotenv_unreadable"]
    assert found and "0xe9" in found[0]["detail"]
    assert_hidden(result.output, key)
