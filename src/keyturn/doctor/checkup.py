"""The checkup: key, format, validity, probe, in that order, each feeding the next.

``diagnose`` runs all four steps from a URL and a key source, as ``keyturn doctor`` does;
``explain_response`` runs them on a request already made, from its response. Both return the
same ``Report``, scrubbed of the key before it leaves this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from keyturn.doctor.catalogue import host_of, provider_at
from keyturn.doctor.clean import clean
from keyturn.doctor.interpret import Answer, interpret
from keyturn.doctor.probe import client, origin, send
from keyturn.doctor.report import Finding, Probe, Report, Step, finding
from keyturn.doctor.route import check_route, insecure, without_password
from keyturn.doctor.sending import (
    Convention,
    check_convention,
    documented,
    literal_key,
    parse_send,
    split_headers,
)
from keyturn.doctor.shape import Identity, check_shape, identify_key
from keyturn.doctor.sources import (
    Found,
    candidate_names,
    find_dotenv_file,
    netrc_findings,
    read_key_file,
    search_key,
)
from keyturn.doctor.validity import (
    DEFAULT_MAX_AGE_DAYS,
    check_age,
    check_jwt,
    parse_created_at,
)
from keyturn.doctor.variants import candidates, explain_variant, try_variants
from keyturn.doctor.verdict import judge
from keyturn.keys import mask
from keyturn.providers import Provider

CREATED_AT_ENV = "KEY_CREATED_AT"
Headers = Sequence[tuple[str, str]] | Mapping[str, str]


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"URL {url!r} must be an absolute http:// or https:// URL")


def _has_error(steps: Iterable[Step]) -> bool:
    return any(f.severity == "error" for s in steps for f in s.findings)


def _format_step(
    key: str | None,
    target: Provider | None,
    url: str | None,
    sent: Convention,
    user_chose: bool,
    header_names: Sequence[str],
    environ: Mapping[str, str],
    route: bool = True,
) -> tuple[Step, Identity]:
    step = Step("format")
    identity = Identity()
    host = host_of(url) if url else ""
    if key is not None:
        identity, found = check_shape(key, target, host)
        step.add(*found)
        if user_chose:
            step.add(*check_convention(sent, target, identity.key_type, header_names, environ))
    if url and route:
        step.add(*check_route(url, environ))
    about = identity.label or ("shape not recognised" if key is not None else "no key")
    api = ""
    if target is not None:
        serves = bool(host) and target.serves(host)
        api = f"; {host} is {target.name}'s API" if serves else f"; treated as {target.name}'s API"
    step.summary = f"{about}{api}; sent as '{sent.describe()}'"
    return step.close(), identity


def _validity_step(
    key: str | None, created_at: datetime | None, max_age_days: int, now: datetime
) -> Step:
    step = Step("validity")
    if key is None:
        return step.skip("no key to check")
    summaries = []
    if created_at is not None:
        summary, found = check_age(created_at, max_age_days, now)
        summaries.append(summary)
        step.add(*found)
    jwt = check_jwt(key, now)
    if jwt is not None:
        summaries.append(jwt[0])
        step.add(*jwt[1])
    if not summaries:
        return step.skip(
            f"no creation date (--created-at or {CREATED_AT_ENV}) and the key is not a JWT"
        )
    step.summary = "; ".join(summaries)
    return step.close()


def _judge_answer(
    step: Step,
    answer: Answer,
    target: Provider | None,
    sent: Convention,
    reported: set[str],
) -> bool:
    reading = interpret(answer, target)
    verdict = judge(answer, reading, target, sent, host_of(answer.url))
    step.add(*(f for f in verdict.findings if f.code not in reported))
    return verdict.authorised


def diagnose(
    url: str | None = None,
    *,
    key: str | None = None,
    key_env: str | None = None,
    key_file: str | Path | None = None,
    key_label: str = "the key given",
    send_as: str | None = None,
    method: str = "GET",
    headers: Headers = (),
    dotenv: str | Path | None = None,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    created_at: datetime | str | None = None,
    probe: bool = True,
    try_other_ways: bool = False,
    provider: str | None = None,
    allow_insecure: bool = False,
    use_keyring: bool = True,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> Report:
    """Run the checkup. Bad input (an unknown provider, a bad ``send_as``, a relative URL,
    an unreadable date) raises ``ValueError`` before anything is read or sent."""
    env = os.environ if environ is None else environ
    now = now or datetime.now(UTC)
    if url is not None:
        _check_url(url)
    target = provider_at(url, provider)
    chosen_send = parse_send(send_as) if send_as else None
    if created_at is None and env.get(CREATED_AT_ENV):
        created_at = env[CREATED_AT_ENV]
    created = parse_created_at(created_at) if isinstance(created_at, str) else created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    method = method.upper()

    # 1. Key present and clean.
    sent, extra_headers = split_headers(_pairs(headers))
    given: Found | None = None
    if key is not None:
        given = Found(key, "argument", key_label)
    elif key_file is not None:
        given = Found(read_key_file(key_file), "file", f"key file {key_file}")
    elif key_env is None and sent is None:
        literal = literal_key(extra_headers, target)
        if literal is not None:
            typed, name, sent, extra_headers = literal
            given = Found(typed, "header", f"the -H '{name}' header")
    names = candidate_names(key_env, target.env if target else ())
    search = search_key(
        names,
        given=given,
        dotenv_path=find_dotenv_file(dotenv),
        environ=env,
        use_keyring=use_keyring,
    )
    key_step = Step("key", summary=f"looked for {', '.join(names)}")
    key_step.add(*search.findings())
    if url:
        key_step.add(*netrc_findings(host_of(url), env))
    raw = search.chosen.value if search.chosen else None
    value: str | None = None
    if search.chosen is not None:
        cleaned = clean(search.chosen.value, search.chosen.where)
        key_step.add(*cleaned.findings)
        value = cleaned.key
        key_step.summary = f"{search.chosen.where}: {mask(value)}"
    key_step.close()

    # 2. Format: of the key and of the request.
    user_chose = sent is not None or chosen_send is not None
    sent = sent or chosen_send
    if sent is None:
        sent = Convention("Authorization", "Bearer $KEY")
        if target is not None:
            kind = identify_key(value, target).key_type if value else None
            sent = documented(target, kind, env)
    request_headers = list(extra_headers)
    if target is not None and not user_chose:
        have = {n.lower() for n, _ in request_headers}
        request_headers += [(n, v) for n, v in target.required_headers if n.lower() not in have]
    format_step, identity = _format_step(
        value, target, url, sent, user_chose, [n for n, _ in request_headers], env
    )

    # 3. Validity.
    validity_step = _validity_step(value, created, max_age_days, now)

    # 4. Probe.
    steps = [key_step, format_step, validity_step]
    probe_step = Step("probe")
    shown_url = without_password(url) if url else None
    report = Report(
        url=shown_url,
        steps=[*steps, probe_step],
        ok=False,
        key=mask(value) if value else None,
        key_source=search.chosen.where if search.chosen else None,
        provider=target.id if target else None,
    )
    skip = _skip_reason(url, probe, value, format_step, allow_insecure)
    if skip or url is None or value is None:
        probe_step.skip(skip or "nothing to send")
        report.ok = not _has_error(steps)
        return report.redacted([s for s in (raw, value) if s])
    reported = {f.code for s in steps for f in s.findings}
    with client(timeout, transport) as http:
        exchange = send(http, method, url, request_headers, sent, value)
        answer = exchange.answer
        report.probe = Probe(
            method, shown_url or url, sent.describe(), answer.status if answer else None,
            tuple(exchange.redirects),
        )
        if exchange.error:
            probe_step.add(
                finding("connection_failed", f"{method} {shown_url}: {exchange.error}")
            )
        elif exchange.blocked and answer is not None:
            probe_step.add(_dropped(shown_url or url, answer.status, exchange.blocked))
        elif answer is not None:
            report.ok = _judge_answer(probe_step, answer, target, sent, reported)
            if not report.ok and try_other_ways and answer.status in (401, 403):
                options = candidates(sent, request_headers, target, identity.key_type, env)
                working = try_variants(
                    http, method, url, request_headers, value, options, target
                )
                if working is not None:
                    report.working_variant = working.name
                    reported |= {f.code for f in probe_step.findings}
                    probe_step.add(*explain_variant(working, sent, reported))
                probe_step.summary = (
                    f"tried {len(options)} other way(s) of sending the key: "
                    + (f"'{working.name}' works" if working else "none was accepted")
                )
    probe_step.summary = probe_step.summary or f"{method} {shown_url}"
    probe_step.close()
    return report.redacted([s for s in (raw, value) if s])


def _skip_reason(
    url: str | None, probe: bool, key: str | None, format_step: Step, allow_insecure: bool
) -> str:
    if url is None:
        return "no URL given: offline checks only"
    if not probe:
        return "--no-probe: offline checks only"
    if key is None:
        return "no key to send"
    if any(f.code == "key_provider_mismatch" for f in format_step.findings):
        return f"the key belongs to another API: the doctor does not send it to {host_of(url)}"
    if insecure(url) and not allow_insecure:
        return "plain http:// to another host: the key was not sent (--allow-insecure sends it)"
    return ""


def _dropped(url: str, status: int, target: str) -> Finding:
    return finding(
        "redirect_dropped_auth",
        f"{url} answers {status} with a redirect to {target}, another origin; clients drop "
        "the key on that redirect, so the request arrives there without it",
        f"call {target} directly",
    )


# -- a response already in hand ------------------------------------------------------------


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


def explain_response(
    response: Any, *, provider: str | None = None, now: datetime | None = None
) -> Report:
    """Diagnose an ``httpx`` or ``requests`` response already received (nothing is sent).

    The key is read from the request that produced the response, so the report covers the
    key's shape and the way it was sent as well as what the server answered.
    """
    now = now or datetime.now(UTC)
    request = response.request
    history = list(getattr(response, "history", ()) or ())
    first = history[0].request if history else request
    url = str(first.url)
    final_url = str(response.url)
    target = provider_at(url, provider)
    first_headers = _header_items(first.headers)
    final_headers = _header_items(request.headers)
    found = _sent_key(first_headers, url, target)

    key_step = Step("key", summary="the key the request carried")
    value = None
    sent = Convention("Authorization", "Bearer $KEY")
    if found is None:
        key_step.add(finding(
            "key_not_set",
            "the request carried no key in Authorization, x-api-key or api-key"
            + (f", nor in {target.header}" if target else ""),
        ))
    else:
        key_found, sent = found
        key_step.add(finding("key_source", f"{key_found.where}: {mask(key_found.value)}"))
        cleaned = clean(key_found.value, key_found.where)
        key_step.add(*cleaned.findings)
        value = cleaned.key
    key_step.close()
    format_step, _ = _format_step(
        value, target, url, sent, True, [n for n, _ in first_headers], {}, route=False
    )
    if insecure(url):
        format_step.add(*(f for f in check_route(url, {}) if f.code == "insecure_transport"))
        format_step.close()
    validity_step = _validity_step(value, None, DEFAULT_MAX_AGE_DAYS, now)
    probe_step = Step("probe", summary=f"{request.method} {final_url} (response in hand)")
    answer = Answer(
        response.status_code, tuple(_header_items(response.headers)), response.content,
        final_url,
    )
    ok = False
    if history and origin(url) != origin(final_url) and found is not None and (
        _sent_key(final_headers, final_url, target) is None
    ):
        probe_step.add(_dropped(url, history[0].status_code, final_url))
    reported = {f.code for s in (key_step, format_step, validity_step) for f in s.findings}
    if not probe_step.findings:
        ok = _judge_answer(probe_step, answer, target, sent, reported)
    probe_step.close()
    report = Report(
        url=url,
        steps=[key_step, format_step, validity_step, probe_step],
        ok=ok,
        key=mask(value) if value else None,
        key_source=found[0].where if found else None,
        provider=target.id if target else None,
        probe=Probe(request.method, final_url, sent.describe(), response.status_code,
                    tuple(f"{r.status_code} → {r.headers.get('location', '')}" for r in history)),
    )
    secrets = [s for s in ((found[0].value if found else None), value) if s]
    return report.redacted(secrets)
