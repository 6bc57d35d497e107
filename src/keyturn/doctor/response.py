"""Diagnose a response already in hand (``httpx`` or ``requests``): nothing is sent.

The key is read back from the request that produced the response, so the report covers the
key's shape and the way it was sent as well as what the server answered, and a redirect to
another origin that dropped the key is named.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from keyturn._providers import Provider
from keyturn.doctor.clean import clean
from keyturn.doctor.interpret import Answer
from keyturn.doctor.probe import dropped, origin
from keyturn.doctor.report import Probe, Report, Step, finding
from keyturn.doctor.route import check_route, insecure, without_password
from keyturn.doctor.scrub import Scrubber
from keyturn.doctor.sending import Convention, literal_key
from keyturn.doctor.sources import Found, mask_found
from keyturn.doctor.steps import Sent, codes_in, format_step, judge_answer, validity_step
from keyturn.doctor.target import provider_at
from keyturn.doctor.validity import DEFAULT_MAX_AGE_DAYS


def _header_items(headers: Any) -> list[tuple[str, str]]:
    """Header pairs in their sent case: httpx keeps it in ``raw``, requests in ``items()``."""
    raw = getattr(headers, "raw", None)
    if isinstance(raw, list):
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    return [(str(k), str(v)) for k, v in headers.items()]


def _sent_key(
    request_headers: list[tuple[str, str]], url: str, target: Provider | None
) -> tuple[Found, Convention] | None:
    literal = literal_key(request_headers, target)
    if literal is not None:
        value, name, convention, _ = literal
        return Found(value, "header", f"the request's {name} header"), convention
    if target is not None and target.query_param:
        for name, value in parse_qsl(urlsplit(url).query):
            if name == target.query_param and value:
                return Found(value, "query", f"the request's ?{name}= parameter"), Convention(
                    query=name
                )
    return None


def _key_step(
    found: tuple[Found, Convention] | None, target: Provider | None
) -> tuple[Step, str | None]:
    step = Step("key", summary="the key the request carried")
    if found is None:
        step.add(
            finding(
                "key_not_set",
                "the request carried no key in Authorization, x-api-key or api-key"
                + (f", nor in {target.header}" if target else ""),
            )
        )
        return step.close(), None
    key_found = found[0]
    step.add(finding("key_source", f"{key_found.where}: {mask_found(key_found.value)}"))
    cleaned = clean(key_found.value, key_found.where)
    step.add(*cleaned.findings)
    return step.close(), cleaned.key


def explain_response(
    response: Any, *, provider: str | None = None, now: datetime | None = None
) -> Report:
    """Diagnose an ``httpx`` or ``requests`` response already received (nothing is sent)."""
    now = now or datetime.now(UTC)
    request = response.request
    history = list(getattr(response, "history", ()) or ())
    first = history[0].request if history else request
    url = str(first.url)
    final_url = str(response.url)
    target = provider_at(url, provider)
    first_headers = _header_items(first.headers)
    found = _sent_key(first_headers, url, target)
    key_step, value = _key_step(found, target)
    convention = found[1] if found else Convention("Authorization", "Bearer $KEY")
    sent = Sent(convention, True, tuple(n for n, _ in first_headers))
    format_step_, _ = format_step(value, target, url, sent, {}, route=False)
    if insecure(url):
        format_step_.add(*(f for f in check_route(url, {}) if f.code == "insecure_transport"))
        format_step_.close()
    validity = validity_step(value, None, DEFAULT_MAX_AGE_DAYS, now)
    scrub = Scrubber([s for s in ((found[0].value if found else None), value) if s])
    probe_step = Step("probe", summary=f"{request.method} {final_url} (response in hand)")
    answer = Answer(
        response.status_code,
        tuple((n, scrub.answer(v)) for n, v in _header_items(response.headers)),
        scrub.bytes(response.content),
        scrub(final_url),
    )
    ok = False
    lost_key = (
        found is not None and _sent_key(_header_items(request.headers), final_url, target) is None
    )
    if history and origin(url) != origin(final_url) and lost_key:
        probe_step.add(
            dropped(without_password(url), history[0].status_code, without_password(final_url))
        )
    else:
        reported = codes_in([key_step, format_step_, validity])
        ok = judge_answer(probe_step, answer, target, convention, reported, now)
    probe_step.close()
    report = Report(
        url=without_password(url),
        steps=[key_step, format_step_, validity, probe_step],
        ok=ok,
        key=mask_found(value) if value else None,
        key_source=found[0].where if found else None,
        provider=target.id if target else None,
        probe=Probe(
            request.method,
            without_password(final_url),
            convention.describe(),
            response.status_code,
            tuple(
                f"{r.status_code} → {without_password(r.headers.get('location', ''))}"
                for r in history
            ),
        ),
    )
    return report.redacted(scrub)
