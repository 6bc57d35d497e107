"""Valid key, but: an API's ways of saying "not allowed", "not shared", "other mode", "hidden".

These answers do not always come as 403. OpenAI answers a restricted key that lacks a scope
with 401 and ``code: null`` ("Missing scopes: api.model.read"); Notion and GitHub answer 404
for what the key may not see; Stripe answers 404 for a test-mode object asked for with a
live key. Read as "the key was rejected" they send people to regenerate a key that is fine.
Each provider's signals are data (``[[provider.signal]]`` in ``providers.toml``); a few
wordings are read for any API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keyturn._providers import Provider, Signal
from keyturn.doctor.interpret import Answer, Interpretation, dig
from keyturn.doctor.report import Finding, finding

# Finding code of each meaning (the catalogue explains each).
FINDINGS = {
    "permission": "insufficient_permissions",
    "not_shared": "resource_not_shared",
    "mode": "key_mode_mismatch",
    "hidden": "resource_hidden",
}

# Wordings any API may use for a valid key without a permission, whatever the status.
_ANY_API = re.compile(
    r"(?i)insufficient[ _](?:permission|scope|privilege)|missing[ _](?:the )?(?:scope|permission)"
    r"|(?:does not|doesn't) have (?:the )?(?:required |necessary |sufficient )?"
    r"(?:permission|scope|access|privilege)|not (?:permitted|authori[sz]ed) to (?:access|perform"
    r"|use|call)|requires? (?:the )?['\"`]?[\w.:/-]+['\"`]? (?:scope|permission)"
)
_NAMED = re.compile(
    r"(?i)(?:missing|required|requires?|needs?)[ _](?:the )?(?:scopes?|permissions?):?\s*"
    r"['\"`]?([\w.:/*-]+(?:,\s*[\w.:/*-]+)*)"
    r"|(?:requires?|needs?) (?:the )?['\"`]?([\w.:/-]+)['\"`]? (?:scope|permission)"
)
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class Denial:
    """A valid key turned away: why, what it lacks and holds, how to fix it."""

    means: str
    needed: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    fix: str = ""

    @property
    def missing(self) -> tuple[str, ...]:
        """What is needed and not held (all that is needed when nothing is known held)."""
        held = set(self.held)
        return tuple(n for n in self.needed if n not in held) or self.needed


def _listed(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value if str(v).strip())
    if isinstance(value, str | int | float) and str(value).strip():
        return tuple(v for v in _SPLIT.split(str(value).strip(" .")) if v)
    return ()


def _matches(signal: Signal, answer: Answer, reading: Interpretation, text: str) -> bool:
    return (
        (not signal.status or answer.status in signal.status)
        and (not signal.codes or reading.code in signal.codes)
        and (signal.message is None or signal.message.search(text) is not None)
        and (not signal.header or answer.header(signal.header) is not None)
        and (not signal.field or dig(answer.json(), signal.field) is True)
    )


def _said(answer: Answer, reading: Interpretation) -> str:
    return " ".join(filter(None, (reading.message, reading.error_description, answer.text())))


def rejected_by_signal(
    answer: Answer, reading: Interpretation, provider: Provider | None
) -> bool:
    """Whether one of the provider's ``rejected`` signals says the key is not valid."""
    text = _said(answer, reading)
    return any(
        s.means == "rejected" and _matches(s, answer, reading, text)
        for s in (provider.signals if provider else ())
    )


def _from_signal(signal: Signal, answer: Answer, text: str) -> Denial:
    body = answer.json()
    needed: tuple[str, ...] = ()
    if signal.needed is not None:
        named = signal.needed.search(text)
        needed = _listed(next((g for g in named.groups() if g), "")) if named else ()
    if not needed and signal.needed_field:
        needed = _listed(dig(body, signal.needed_field))
    if not needed and signal.needed_header:
        needed = _listed(answer.header(signal.needed_header))
    held = _listed(dig(body, signal.held_field)) if signal.held_field else ()
    if not held and signal.held_header:
        held = _listed(answer.header(signal.held_header))
    return Denial(signal.means, needed, held, signal.fix)


def read_denial(
    answer: Answer, reading: Interpretation, provider: Provider | None
) -> Denial | None:
    """The "valid key, but" this answer gives, if it gives one."""
    text = _said(answer, reading)
    for signal in provider.signals if provider else ():
        if signal.means != "rejected" and _matches(signal, answer, reading, text):
            return _from_signal(signal, answer, text)
    if answer.status in (401, 403) and _ANY_API.search(text):
        named = _NAMED.search(text)
        needed = _listed(next((g for g in named.groups() if g), "")) if named else ()
        return Denial("permission", needed)
    return None


def denial_finding(denial: Denial, where: str, said: str, api: str) -> Finding:
    """The finding for ``denial``: what the key lacks, and a fix that keeps the key."""
    missing = ", ".join(denial.missing)
    held = ", ".join(denial.held)
    detail = f"{where}{said}"
    if missing:
        detail += f"; the key lacks: {missing}" if denial.means == "permission" else (
            f"; needed: {missing}")
    if held:
        detail += f"; it holds: {held}"
    fix = denial.fix.format(needed=missing or "the permission the API names",
                            held=held or "none named", api=api) if denial.fix else ""
    if not fix and denial.means == "permission":
        fix = (f"give the key {missing} in {api}'s dashboard (the key is valid: keep it)"
               if missing else
               f"give the key the permission this endpoint needs in {api}'s dashboard (the key "
               "is valid: keep it), or call an endpoint it may use")
    return finding(FINDINGS[denial.means], detail, fix)
