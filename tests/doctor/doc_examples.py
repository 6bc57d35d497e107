"""What docs/doctor.md shows, made from the catalogue and the doctor itself.

`python -m tests.doctor.doc_examples` prints the provider table and the three Markdown
reports; tests/doctor/test_docs.py holds the page to them. The reports are the doctor's real
output for answers the emulator gives as each API documents them, with the request routed
to the emulator in process (so the page shows the real URL) and keys that are obviously
made up (only their masks appear).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import httpx

from keyturn._providers import entries
from keyturn.doctor import diagnose, render_markdown
from keyturn.keys import encode_base62
from tests.doctor.apis import Seen
from tests.doctor.emulator import Emulator

_CASES = ("no_key", "wrong_way", "bad_key", "no_version", "permission")


def _way(entry: dict[str, Any]) -> str:
    header, scheme = entry.get("header", "Authorization"), entry.get("scheme", "Bearer")
    if scheme.lower() == "basic":
        user = entry.get("basic_user", "")
        return f"`{header}: Basic base64({user or '<key>'}:{'<key>' if user else ''})`"
    way = f"`{header}: {scheme + ' ' if scheme else ''}<key>`"
    others = ", ".join(f"`{a}`" for a in entry.get("also_accepts", ()))
    return way + (f" (also {others})" if others else "")


def _shapes(entry: dict[str, Any]) -> str:
    shown = []
    for kind in entry.get("key_type", ()):
        label = kind["name"] + (f" `{kind['prefix']}…`" if kind.get("prefix") else "")
        if not kind.get("usable", True):
            label += " (not for this API)"
        elif not kind.get("distinctive", True):
            label += " (checked, not identifying)"
        shown.append(label)
    return "; ".join(shown)


def _signal(signal: dict[str, Any]) -> str:
    parts = []
    if signal.get("status"):
        parts.append("HTTP " + "/".join(str(s) for s in signal["status"]))
    parts += [f"`{c}`" for c in signal.get("code", ())]
    if signal.get("message"):
        parts.append(f"message /{signal['message']}/".replace("|", "\\|"))
    if signal.get("header"):
        parts.append(f"header `{signal['header']}`")
    if signal.get("field"):
        parts.append(f"`{signal['field']}` true")
    if signal.get("needed") or signal.get("needed_field") or signal.get("needed_header"):
        parts.append("names what is needed")
    if signal.get("held_field") or signal.get("held_header"):
        parts.append("and what is held")
    return f"{signal['means']} ({', '.join(parts)})" if parts else signal["means"]


def _answers(entry: dict[str, Any]) -> str:
    answers = entry["answers"]
    cases = [c.replace("_", " ") for c in _CASES if c in answers]
    cases += list(answers.get("more", {}))
    return ", ".join(cases)


def table() -> str:
    """The table of every catalogued API and what the doctor knows about it."""
    lines = [
        "| API | sends the key as | required headers | key shapes | valid key, but… "
        "| documented answers |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries():
        required = ", ".join(f"`{n}: {v}`" for n, v in entry.get("required_headers", {}).items())
        signals = "; ".join(_signal(s) for s in entry.get("signal", ()))
        lines.append(
            f"| {entry['name']} (`{entry['id']}`) | {_way(entry)} | {required or '—'} | "
            f"{_shapes(entry)} | {signals or '—'} | {_answers(entry)} |"
        )
    return "\n".join(lines)


# -- the three reports -----------------------------------------------------------------------


def _transport(emulator: Emulator) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        seen = Seen(request.method, path, [(k, v) for k, v in request.headers.items()])
        reply = emulator(seen)
        return httpx.Response(reply.status, headers=reply.headers, content=reply.encoded())

    return httpx.MockTransport(handle)


# Made-up keys of the right shapes: only their masks reach the page.
OPENAI_KEY = "sk-proj-" + "Example0Key0For0The0Docs" * 2 + "aB1c"
ANTHROPIC_KEY = "sk-ant-api03-" + ("Example0Key0For0The0Docs" * 4)[:93] + "AA"
_BODY = "Example0Key0For0The0Docs0A"[:30].ljust(30, "0")
GITHUB_KEY = "ghp_" + _BODY + encode_base62(zlib.crc32(_BODY.encode()), 6)  # checksum holds

COMMANDS = {
    "openai": "OPENAI_API_KEY=sk-proj-… keyturn doctor https://api.openai.com/v1/models "
              "--format markdown",
    "anthropic": "keyturn doctor https://api.anthropic.com/v1/models --send bearer "
                 "--try-variants --format markdown",
    "github": "keyturn doctor https://api.github.com/repos/acme/billing --format markdown",
}


def reports() -> Iterator[tuple[str, str, str]]:
    """(provider, command, Markdown report) for the three cases docs/doctor.md shows."""
    openai = Emulator("openai", OPENAI_KEY, deny="permission")
    yield "openai", COMMANDS["openai"], render_markdown(diagnose(
        "https://api.openai.com/v1/models", environ={"OPENAI_API_KEY": OPENAI_KEY},
        use_keyring=False, transport=_transport(openai)))
    anthropic = Emulator("anthropic", ANTHROPIC_KEY)
    yield "anthropic", COMMANDS["anthropic"], render_markdown(diagnose(
        "https://api.anthropic.com/v1/models", environ={"ANTHROPIC_API_KEY": ANTHROPIC_KEY},
        send_as="bearer", try_other_ways=True, use_keyring=False,
        transport=_transport(anthropic)))
    github = Emulator("github", GITHUB_KEY, deny="private")
    yield "github", COMMANDS["github"], render_markdown(diagnose(
        "https://api.github.com/repos/acme/billing", environ={"GITHUB_TOKEN": GITHUB_KEY},
        use_keyring=False, transport=_transport(github)))


if __name__ == "__main__":
    print(table())
    for _, command, report in reports():
        print(f"\n$ {command}\n\n{report}")
