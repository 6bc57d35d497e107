"""What the doctor found: findings, grouped in steps, in one report.

A finding's code, severity, title and default fix come from the outcome catalogue, so
``keyturn explain CODE`` says the same as the report; only the detail is computed. The report
is plain data with one JSON shape (documented in ``docs/doctor.md``); rendering it for a
terminal or a bug report lives in ``render.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from keyturn.doctor.scrub import Scrubber
from keyturn.outcomes import lookup

Severity = Literal["error", "warning", "info"]
StepStatus = Literal["passed", "failed", "skipped"]

STEP_TITLES = {
    "key": "Key present and clean",
    "format": "Format",
    "validity": "Validity",
    "probe": "Probe",
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    title: str
    detail: str
    fix: str
    url: str = ""  # where the server documents this answer (a keyturn problem's type)

    def as_dict(self) -> dict[str, str]:
        shown = {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
        }
        if self.url:
            shown["url"] = self.url
        return shown


def finding(code: str, detail: str, fix: str = "") -> Finding:
    """A finding for catalogue ``code``; ``fix`` replaces the catalogue's when more precise.

    A keyturn outcome code (reported when the server is keyturn) is an error when its HTTP
    status is one, information otherwise.
    """
    entry = lookup(code)
    if entry.kind == "finding":
        severity: Severity = entry.severity or "info"
    else:
        severity = "error" if entry.status >= 400 else "info"
    return Finding(code, severity, entry.title, detail, fix or entry.fix)


@dataclass(slots=True)
class Step:
    """One stage of the checkup; ``summary`` says what was checked, or why it was skipped."""

    name: str
    status: StepStatus = "passed"
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.name, self.name)

    def add(self, *found: Finding) -> None:
        self.findings.extend(found)

    def close(self) -> Step:
        """Passed unless an error was found (a skipped step stays skipped)."""
        if self.status != "skipped":
            failed = any(f.severity == "error" for f in self.findings)
            self.status = "failed" if failed else "passed"
        return self

    def skip(self, why: str) -> Step:
        self.status = "skipped"
        self.summary = why
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class Tried:
    """One variant ``--try-variants`` sent, exactly as sent, and what came back."""

    way: str  # the --send spelling, plus any header added
    sent_as: str
    status: int | None
    result: str
    redirects: int = 0  # same-origin redirects followed (each one more request)

    def as_dict(self) -> dict[str, Any]:
        return {
            "way": self.way,
            "sent_as": self.sent_as,
            "status": self.status,
            "result": self.result,
            "redirects": self.redirects,
        }


@dataclass(frozen=True, slots=True)
class Probe:
    """The request the doctor sent and what came back (no key: ``sent_as`` uses ``<key>``)."""

    method: str
    url: str
    sent_as: str
    status: int | None
    redirects: tuple[str, ...] = ()
    variants: tuple[Tried, ...] = ()  # with --try-variants: every variant sent, in order

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "sent_as": self.sent_as,
            "status": self.status,
            "redirects": list(self.redirects),
            "variants": [t.as_dict() for t in self.variants],
        }


@dataclass(slots=True)
class Report:
    url: str | None
    steps: list[Step]
    ok: bool
    key: str | None = None  # masked
    key_source: str | None = None
    provider: str | None = None
    probe: Probe | None = None
    working_variant: str | None = None
    # Carried to the renderers, which scrub their final text once more; holds no secret.
    scrub: Scrubber = field(default_factory=Scrubber, repr=False, compare=False)

    @property
    def findings(self) -> list[Finding]:
        return [f for step in self.steps for f in step.findings]

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "key": self.key,
            "key_source": self.key_source,
            "provider": self.provider,
            "steps": [s.as_dict() for s in self.steps],
            "findings": [f.as_dict() for f in self.findings],
            "probe": self.probe.as_dict() if self.probe else None,
            "working_variant": self.working_variant,
        }

    def redacted(self, scrub: Scrubber) -> Report:
        """This report with every copy of a secret replaced by its mask, wherever it hid.

        Servers echo keys in error messages, URLs carry them in query strings: the report
        is scrubbed as a whole rather than trusting every line that wrote to it, and keeps
        the scrubber so that the renderers can scrub their output too.
        """
        steps = [
            Step(
                s.name,
                s.status,
                scrub(s.summary),
                [
                    replace(f, detail=scrub(f.detail), fix=scrub(f.fix), title=scrub(f.title),
                            url=scrub(f.url))
                    for f in s.findings
                ],
            )
            for s in self.steps
        ]
        probe = self.probe
        if probe is not None:
            probe = replace(
                probe,
                url=scrub(probe.url),
                sent_as=scrub(probe.sent_as),
                redirects=tuple(scrub(r) for r in probe.redirects),
                variants=tuple(
                    replace(t, way=scrub(t.way), sent_as=scrub(t.sent_as), result=scrub(t.result))
                    for t in probe.variants
                ),
            )
        return Report(
            url=scrub(self.url) if self.url is not None else None,
            steps=steps,
            ok=self.ok,
            key=scrub(self.key) if self.key else self.key,
            key_source=scrub(self.key_source) if self.key_source else self.key_source,
            provider=self.provider,
            probe=probe,
            working_variant=scrub(self.working_variant) if self.working_variant else None,
            scrub=scrub,
        )
