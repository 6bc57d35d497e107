"""Is the value a clean key? Whitespace, quotes, placeholders, a scheme inside the value.

These are the mistakes made while storing a key rather than issuing it: ``echo KEY >> .env``
leaves a line break, Docker's ``--env-file`` keeps quotes, a README's ``your-api-key-here``
is never replaced. Each is named, and the doctor carries on with the cleaned value so the
later steps still say something useful.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from keyturn._placeholders import is_placeholder
from keyturn.doctor.report import Finding, finding

# Characters that look like nothing in a terminal but change the key.
_INVISIBLE = {
    "\n": "a line break",
    "\r": "a carriage return (Windows line ending)",
    "\t": "a tab",
    " ": "a space",
    "\u00a0": "a non-breaking space",
    "\ufeff": "a byte-order mark",
    "\u200b": "a zero-width space",
    "\v": "a vertical tab",
    "\f": "a form feed",
}
_STRIP = "".join(_INVISIBLE)
_QUOTES = {'"': '"', "'": "'", "`": "`", "“": "”", "‘": "’", "«": "»"}
_SCHEME_INSIDE = re.compile(r"(?i)(bearer|token|basic|api-?key)\s+(\S+)")
# A whole .env line pasted as the value: OPENAI_API_KEY=sk-...
_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=(\S+)")

# What word processors and chat apps put in place of the ASCII a key is made of.
_LOOKALIKES = {
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2212": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2024": ".", "\u2026": "...", "\uff3f": "_",
}


def sendable(key: str) -> bool:
    """Whether an HTTP header can carry ``key`` as it is (visible ASCII and spaces)."""
    return all(" " <= c <= "~" for c in key)


def _describe_foreign(value: str) -> str:
    """The characters of ``value`` no header carries (besides whitespace), by code point:
    naming them says what happened without printing the key."""
    foreign = dict.fromkeys(c for c in value if not " " <= c <= "~" and c not in _INVISIBLE)
    names = []
    for char in foreign:
        name = unicodedata.name(char, "a control character" if ord(char) < 0xA0 else "")
        label = f"U+{ord(char):04X}" + (f" {name}" if name else "")
        if char in _LOOKALIKES:
            label += f" (in place of '{_LOOKALIKES[char]}'?)"
        names.append(label)
    return ", ".join(names)


@dataclass(slots=True)
class Cleaned:
    """The value as a client should send it, and what had to be removed to get there."""

    key: str
    findings: list[Finding] = field(default_factory=list)


def _describe_invisible(value: str, inner: bool = True) -> str:
    stripped = value.strip(_STRIP) if inner else ""
    parts = []
    lead = value[: len(value) - len(value.lstrip(_STRIP))]
    trail = value[len(value.rstrip(_STRIP)) :]
    if lead:
        parts.append("starts with " + _names(lead))
    if trail:
        parts.append("ends with " + _names(trail))
    inside = "".join(c for c in stripped if c in _INVISIBLE)
    if inside:
        parts.append("contains " + _names(inside))
    return " and ".join(parts)


def _names(chars: str) -> str:
    return ", ".join(dict.fromkeys(_INVISIBLE[c] for c in chars))


def unquote(value: str) -> str | None:
    """The value inside matching quotes, or ``None`` if it is not quoted."""
    if len(value) >= 2 and _QUOTES.get(value[0]) == value[-1]:
        inner = value[1:-1]
        return unquote(inner) or inner
    return None


def clean(raw: str, where: str) -> Cleaned:
    """Check ``raw`` (found at ``where``) and return the key a careful client would send."""
    result = Cleaned(raw)
    value = raw.strip(_STRIP)
    inner = unquote(value)
    if inner is not None:
        result.findings.append(
            finding(
                "key_quoted",
                f"the value from {where} is wrapped in {value[0]}{value[-1]}, which would be "
                "sent as part of the key",
            )
        )
        value = inner.strip(_STRIP)
    scheme = _SCHEME_INSIDE.fullmatch(value)
    assignment = _ASSIGNMENT.fullmatch(value)
    if scheme:
        result.findings.append(
            finding(
                "key_malformed",
                f"the value from {where} is '{scheme[1]} <key>', not a bare key: a client that "
                f"adds its own scheme sends '{scheme[1]}' twice",
                "store the bare key; the client adds the scheme",
            )
        )
        value = scheme[2]
    elif assignment:
        result.findings.append(
            finding(
                "key_malformed",
                f"the value from {where} is a whole assignment '{assignment[1]}=<key>', "
                "probably pasted from a .env line",
                f"store only what follows '{assignment[1]}='",
            )
        )
        value = assignment[2]
    # The space in "Bearer <key>" is part of that mistake, not a whitespace mistake.
    invisible = _describe_invisible(raw, inner=not (scheme or assignment))
    if invisible:
        result.findings.insert(0, finding("key_whitespace", f"the value from {where} {invisible}"))
    foreign = _describe_foreign(value)
    if foreign:
        result.findings.append(finding(
            "key_invalid_characters",
            f"the value from {where} contains {foreign}: no HTTP header can carry "
            "it, so no client sends this key as it is",
        ))
    if is_placeholder(value):
        result.findings.append(finding(
            "key_placeholder",
            f"the value from {where} ({len(value)} characters) is a placeholder from an "
            "example or template, not a key",
        ))
    result.key = value
    return result
