"""The outcome catalogue: one vocabulary for the server, the CLI and the doctor.

The entries live in ``outcomes.toml`` beside this module so that they are data, written
once: adding a code there makes the server answer with it and ``keyturn explain`` know it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

# "problem": an answer about the request or connection itself (too large, too slow), given
# by ``keyturn serve`` before any key is judged, or about a change or a dependency (an
# invalid value, a conflict, an outage: the classes of ``keyturn.errors``).
Kind = Literal["outcome", "finding", "problem"]
Severity = Literal["error", "warning", "info", ""]


@dataclass(frozen=True, slots=True)
class Outcome:
    code: str
    kind: Kind
    status: int
    error: str
    title: str
    explanation: str
    fix: str
    severity: Severity = ""
    related: tuple[str, ...] = ()  # codes a reader may want next

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["related"] = list(self.related)
        return fields


class UnknownCode(KeyError):
    """Raised for a code the catalogue does not hold; the message lists the close ones."""


def _load() -> Mapping[str, Outcome]:
    raw = tomllib.loads(resources.files(__package__).joinpath("outcomes.toml").read_text("utf-8"))
    entries = {}
    for code, fields in raw.items():
        entries[code] = Outcome(
            code=code,
            kind=fields["kind"],
            status=int(fields.get("status", 0)),
            error=fields.get("error", ""),
            title=fields["title"],
            explanation=" ".join(fields["explanation"].split()),
            fix=" ".join(fields["fix"].split()),
            severity=fields.get("severity", ""),
            related=tuple(fields.get("related", ())),
        )
    unknown = {r for e in entries.values() for r in e.related} - entries.keys()
    if unknown:  # a typo in the data file, found when keyturn is imported
        raise ValueError(f"outcomes.toml: related codes not in the catalogue: {sorted(unknown)}")
    return MappingProxyType(entries)


CATALOGUE: Mapping[str, Outcome] = _load()


def spelled(code: str) -> str:
    """``code`` as the catalogue writes codes: a person may type ``KEY_EXPIRED`` or
    ``key-expired``; the catalogue (and each page's address) says ``key_expired``."""
    return code.strip().lower().replace("-", "_")


def lookup(code: str) -> Outcome:
    """The catalogue entry for ``code`` (in any case, ``spelled``); ``UnknownCode`` names
    the nearest codes if absent."""
    try:
        return CATALOGUE[spelled(code)]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(spelled(code), list(CATALOGUE), n=3)
        suggestion = f"; did you mean {', '.join(near)}?" if near else ""
        raise UnknownCode(f"unknown code {code!r}{suggestion}") from None


def render_text(outcome: Outcome) -> str:
    head = f"{outcome.code} — {outcome.title}"
    facts = []
    if outcome.status:
        facts.append(f"HTTP {outcome.status}")
    if outcome.error:
        facts.append(f'error="{outcome.error}"')
    if outcome.severity:
        facts.append(f"severity {outcome.severity}")
    lines = [head]
    if facts:
        lines.append("  " + ", ".join(facts))
    lines += ["", outcome.explanation, "", f"Fix: {outcome.fix}"]
    return "\n".join(lines)


def render_markdown(outcome: Outcome, link: Callable[[str], str] | None = None) -> str:
    """The entry as Markdown; ``link(code)``, when given, is where a related code's entry
    is (the served catalogue links them), else they are named."""
    facts = [f"kind: {outcome.kind}"]
    if outcome.status:
        facts.append(f"HTTP {outcome.status}")
    if outcome.error:
        facts.append(f"RFC 6750 error `{outcome.error}`")
    if outcome.severity:
        facts.append(f"severity {outcome.severity}")
    return "\n".join(
        [
            f"### `{outcome.code}` — {outcome.title}",
            "",
            " · ".join(facts),
            "",
            outcome.explanation,
            "",
            f"**Fix:** {outcome.fix}",
            *(
                [
                    "",
                    "**Related:** "
                    + ", ".join(
                        f"[`{code}`]({link(code)})" if link else f"`{code}`"
                        for code in outcome.related
                    ),
                ]
                if outcome.related
                else []
            ),
        ]
    )
