"""The report for people: a terminal (plain, or styled on a TTY) and a bug report (Markdown).

Both show the same facts in the same order as the JSON: the verdict first, then each step
with its findings. The Markdown is meant to be pasted into an issue as it is, so everything
a server said is escaped and the key appears only masked (the report is already scrubbed).
"""

from __future__ import annotations

import json
import re

from keyturn import __version__
from keyturn.doctor.report import Finding, Report, Tried

Line = tuple[str, str]  # (text, rich style)

_STEP_MARK = {"passed": "✓", "failed": "✗", "skipped": "–"}
_STEP_STYLE = {"passed": "green", "failed": "bold red", "skipped": "dim"}
_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}
_MD_STATUS = {"passed": "✅ passed", "failed": "❌ failed", "skipped": "⏭️ skipped"}


def _tally(report: Report) -> str:
    counts = {s: 0 for s in ("error", "warning")}
    for f in report.findings:
        if f.severity in counts:
            counts[f.severity] += 1
    parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    return ", ".join(parts) or "no problems found"


def _verdict(report: Report) -> str:
    if report.probe is not None and report.probe.status is not None:
        return "authorised" if report.ok else "not authorised"
    return "no errors" if report.ok else "problems found"


def text_lines(report: Report) -> list[Line]:
    lines: list[Line] = []
    probe = report.probe
    head = f"{probe.method} {probe.url}" if probe else (report.url or "offline checks")
    lines.append((f"keyturn doctor: {head}", "bold"))
    facts = []
    if report.key:
        facts.append(f"key {report.key} from {report.key_source}")
    if report.provider:
        facts.append(f"provider {report.provider}")
    if probe is not None:
        facts.append(f"sent as '{probe.sent_as}'")
        if probe.status is not None:
            facts.append(f"HTTP {probe.status}")
    if facts:
        lines.append(("  " + " · ".join(facts), "dim"))
    for number, step in enumerate(report.steps, 1):
        lines.append(("", ""))
        summary = f" ({step.summary})" if step.summary else ""
        lines.append((
            f"{_STEP_MARK[step.status]} {number}. {step.title}: {step.status}{summary}",
            _STEP_STYLE[step.status],
        ))
        for found in step.findings:
            lines.extend(_finding_lines(found))
    variants = report.probe.variants if report.probe else ()
    if variants:
        lines.append(("", ""))
        lines.append(("Variants sent (--try-variants), in order:", "bold"))
        for number, tried in enumerate(variants, 1):
            lines.append((f"  {number}. {tried.sent_as} → {_result(tried)}", ""))
    lines.append(("", ""))
    style = "bold green" if report.ok else "bold red"
    lines.append((f"Result: {_verdict(report)} ({_tally(report)})", style))
    if report.working_variant:
        lines.append((f"Working variant: {report.working_variant}", "bold"))
    if report.findings:
        lines.append(("More on any code: keyturn explain CODE", "dim"))
    return lines


def _result(tried: Tried) -> str:
    redirects = f" (after {tried.redirects} redirect(s))" if tried.redirects else ""
    return f"{tried.result}{redirects}"


def _finding_lines(found: Finding) -> list[Line]:
    style = _SEVERITY_STYLE[found.severity]
    return [
        (f"    {found.severity:<7}  {found.code}: {found.title}", style),
        (f"             {found.detail}", ""),
        (f"             fix: {found.fix}", "dim"),
        *([(f"             more: {found.url}", "dim")] if found.url else []),
    ]


def inert(text: str) -> str:
    """``text`` with every character that could steer a terminal written out instead:
    control characters (ESC starts an escape sequence), bidirectional overrides and line
    separators become ``\\xNN`` / ``\\uNNNN``. A server's answer reaches the report."""
    return "".join(_visible(c) for c in text)


def _visible(char: str) -> str:
    if char.isprintable() or char == " ":
        return char
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def _shown(report: Report, text: str) -> str:
    """A line of output: scrubbed, made inert, and scrubbed again (the escapes inert writes
    are one more way of writing a key that holds such characters)."""
    return report.scrub(inert(report.scrub(text)))


def text_output(report: Report) -> list[Line]:
    """``text_lines`` as a terminal may show them: each scrubbed once more and inert."""
    return [(_shown(report, text), style) for text, style in text_lines(report)]


def render_text(report: Report) -> str:
    return "\n".join(text for text, _ in text_output(report))


def render_json(report: Report) -> str:
    """The report as JSON (every non-ASCII character escaped, so nothing reaches a terminal
    raw), scrubbed once more as a whole; a piece of the key that only the escaping formed
    costs the string it is in, never the key."""
    text = json.dumps(report.as_dict(), indent=2, ensure_ascii=True)
    scrubbed = report.scrub(text)
    if scrubbed != text:
        try:
            json.loads(scrubbed)
        except ValueError:
            return json.dumps({"ok": report.ok, "error": "the report cannot be written in JSON "
                               "without showing part of the key; use --format text"})
    return scrubbed


# -- Markdown ------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md(text: str) -> str:
    """Text from anywhere (a server's message, a URL) made inert in Markdown."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


_CODE_SPAN = re.compile(r"(`[^`]+`)")


def prose(text: str) -> str:
    """Catalogue prose, whose `code spans` are meant to render: only HTML is neutralised,
    and only outside the spans (inside them, Markdown shows text literally)."""
    parts = _CODE_SPAN.split(" ".join(text.split()))
    return "".join(
        part if part.startswith("`") and part.endswith("`") and len(part) > 1
        else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for part in parts
    )


def code(text: str) -> str:
    """Inline code that survives backticks and pipes inside it."""
    text = " ".join(text.split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _computed(found: Finding) -> bool:
    """Whether the fix was written for this case (and may quote a server) or is the
    catalogue's own text."""
    from keyturn.outcomes import CATALOGUE

    entry = CATALOGUE.get(found.code)
    return entry is None or found.fix != entry.fix


def render_markdown(report: Report) -> str:
    probe = report.probe
    verdict = ("✅ " if report.ok else "❌ ") + _verdict(report)
    out = ["### keyturn doctor report", "", f"**Result:** {verdict} ({_tally(report)})  "]
    if probe is not None:
        status = f" → HTTP {probe.status}" if probe.status is not None else ""
        out.append(
            f"**Request:** {code(f'{probe.method} {probe.url}')}, key sent as "
            f"{code(probe.sent_as)}{status}  "
        )
        if probe.redirects:
            out.append(f"**Redirects:** {', '.join(code(r) for r in probe.redirects)}  ")
    elif report.url:
        out.append(f"**URL:** {code(report.url)} (not requested)  ")
    if report.key:
        out.append(f"**Key:** {code(report.key)} from {md(report.key_source or '?')}  ")
    if report.provider:
        out.append(f"**Provider:** {code(report.provider)}  ")
    if report.working_variant:
        out.append(f"**Working variant:** {code(report.working_variant)}  ")
    out += ["", "| # | Step | Status | Summary |", "|---|------|--------|---------|"]
    for number, step in enumerate(report.steps, 1):
        out.append(
            f"| {number} | {step.title} | {_MD_STATUS[step.status]} | {md(step.summary)} |"
        )
    variants = probe.variants if probe else ()
    if variants:
        out += ["", "#### Variants sent (`--try-variants`)", "", "| # | Sent as | Answer |",
                "|---|---------|--------|"]
        out += [f"| {n} | {code(t.sent_as)} | {md(_result(t))} |"
                for n, t in enumerate(variants, 1)]
    if report.findings:
        out += ["", "#### Findings", ""]
        for number, found in enumerate(report.findings, 1):
            out += [
                f"{number}. **{found.severity}** · {code(found.code)} — {prose(found.title)}  ",
                f"   {md(found.detail)}  ",
                f"   *Fix:* {md(found.fix) if _computed(found) else prose(found.fix)}"
                + (f"  \n   *More:* <{found.url}>" if found.url else ""),
            ]
    out += [
        "",
        f"<sub>keyturn doctor {__version__} · the key is masked · "
        "`keyturn explain CODE` explains any code</sub>",
    ]
    return "\n".join(_shown(report, line) for line in out)
