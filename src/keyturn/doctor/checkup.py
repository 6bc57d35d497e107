"""The checkup: key, format, validity, probe, in that order, each feeding the next.

A ``Checkup`` is the typed request (what to diagnose, where the key is, how to send it, the
bounds); ``diagnose`` validates it into a plan, before anything is read or sent, then runs
the four steps as small functions. The report is scrubbed of the key before it leaves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from keyturn._providers import Provider
from keyturn.doctor.clean import clean, sendable
from keyturn.doctor.deadline import Deadline
from keyturn.doctor.probe import Exchange, Sender, client, dropped
from keyturn.doctor.report import Finding, Probe, Report, Step, finding
from keyturn.doctor.route import insecure, userinfo, without_password
from keyturn.doctor.scrub import Scrubber
from keyturn.doctor.sending import (
    Convention,
    documented,
    literal_key,
    parse_send,
    required_headers,
    split_headers,
)
from keyturn.doctor.shape import Identity, identify_key
from keyturn.doctor.sources import (
    Found,
    candidate_names,
    find_dotenv_file,
    looks_like_key,
    mask_found,
    netrc_findings,
    read_key_file,
    search_key,
)
from keyturn.doctor.steps import (
    CREATED_AT_ENV,
    Sent,
    codes_in,
    format_step,
    has_error,
    judge_answer,
    validity_step,
)
from keyturn.doctor.target import host_of, provider_at
from keyturn.doctor.validity import DEFAULT_MAX_AGE_DAYS, parse_created_at
from keyturn.doctor.variants import candidates, explain_variant, try_variants

Headers = Sequence[tuple[str, str]] | Mapping[str, str]
BEARER = Convention("Authorization", "Bearer $KEY")


@dataclass(frozen=True, slots=True)
class Checkup:
    """What to diagnose and how; every field is optional (``docs/doctor.md`` has the list).

    ``key``/``key_env``/``key_file`` name the key's source (else the provider's usual
    variable, then ``API_KEY``); ``send_as`` and ``headers`` say how the request carries it;
    ``probe``, ``try_other_ways``, ``allow_insecure`` and ``timeout`` bound what is sent.
    """

    url: str | None = None
    key: str | None = None
    key_env: str | None = None
    key_file: str | Path | None = None
    key_label: str = "the key given"
    send_as: str | None = None
    method: str = "GET"
    headers: Headers = ()
    dotenv: str | Path | None = None
    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    created_at: datetime | str | None = None
    probe: bool = True
    try_other_ways: bool = False
    provider: str | None = None
    allow_insecure: bool = False
    use_keyring: bool = True
    environ: Mapping[str, str] | None = None
    now: datetime | None = None
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = field(default=None, compare=False)


def diagnose(url: str | Checkup | None = None, **options: Any) -> Report:
    """Run the checkup of ``url`` with ``options`` (the fields of ``Checkup``), or run a
    ``Checkup`` as given. Bad input (an unknown provider, a bad ``send_as``, a relative URL,
    an unreadable date or key file) raises ``ValueError`` before anything is read or sent."""
    checkup = replace(url, **options) if isinstance(url, Checkup) else Checkup(url, **options)
    plan = _plan(checkup)
    found = _key_step(plan)
    sent, headers = _sending(plan, found)
    formatted, identity = format_step(found.value, plan.target, plan.url, sent, plan.env)
    validity = validity_step(found.value, plan.created, checkup.max_age_days, plan.now)
    steps = [found.step, formatted, validity]
    report = Report(
        url=without_password(plan.url) if plan.url else None,
        steps=steps,
        ok=False,
        key=mask_found(found.value) if found.value else None,
        key_source=found.where,
        provider=plan.target.id if plan.target else None,
    )
    scrub = Scrubber([*found.secrets, *plan.url_secrets])
    skip = _skip_reason(plan, found.value, steps)
    if skip:
        report.steps.append(Step("probe").skip(skip))
        report.ok = not has_error(steps)
    else:
        _probe(plan, found, sent.convention, headers, identity, report, scrub)
    return report.redacted(scrub)


# -- the plan: the request checked, before anything is read or sent -------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    checkup: Checkup
    url: str | None
    env: Mapping[str, str]
    now: datetime
    target: Provider | None
    chosen: Convention | None  # --send
    created: datetime | None
    method: str
    url_user: tuple[str, str | None] | None  # user:password@ in the URL
    url_secrets: tuple[str, ...]


def _check_url(url: str) -> None:
    # Shown without its password or query, either of which may hold a key.
    shown = without_password(url).partition("?")[0] + ("?…" if "?" in url else "")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise ValueError(f"URL {shown!r} has a port that is not a number from 0 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"URL {shown!r} must be an absolute http:// or https:// URL")
    if not sendable(url):
        raise ValueError(f"URL {shown!r} has characters a URL cannot hold; percent-encode them")


def _check_headers(headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if not sendable(name + value) or not name.strip():
            raise ValueError(
                f"header {name[:40]!r} cannot be sent: a header holds visible ASCII only"
            )


# A variable's name as shells write one.
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_key_env(name: str) -> None:
    """``name`` can be a variable's name: a key given in its place (``--key-env "$KEY"``)
    would be quoted whole in the report (``looked for ...``), so it is refused unquoted."""
    if not _VARIABLE.fullmatch(name) or looks_like_key(name):
        raise ValueError(
            "--key-env takes the name of an environment variable (like OPENAI_API_KEY); "
            "the value given is not one and may be a key itself, so it is not shown: pass "
            "the variable's name, without $"
        )


def _plan(checkup: Checkup) -> _Plan:
    env = os.environ if checkup.environ is None else checkup.environ
    url = checkup.url
    if url is not None:
        _check_url(url)
    if checkup.key_env:
        _check_key_env(checkup.key_env)
    user = userinfo(url) if url else None
    created = checkup.created_at
    if created is None:
        created = env.get(CREATED_AT_ENV) or None
    if isinstance(created, str):
        created = parse_created_at(created)
    elif created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return _Plan(
        checkup=checkup,
        url=url,
        env=env,
        now=checkup.now or datetime.now(UTC),
        target=provider_at(url, checkup.provider),
        chosen=parse_send(checkup.send_as) if checkup.send_as else None,
        created=created,
        method=checkup.method.upper(),
        url_user=user,
        url_secrets=tuple(s for s in (user or ()) if s),
    )


# -- step 1: the key ------------------------------------------------------------------------


@dataclass(slots=True)
class _KeyFound:
    step: Step
    value: str | None  # the key as a careful client would send it
    where: str | None
    secrets: list[str]  # every form of it to scrub from the report
    sent: Convention | None  # the way a -H header carries it
    headers: list[tuple[str, str]]  # the other -H headers


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _given(
    plan: _Plan, sent: Convention | None, headers: list[tuple[str, str]]
) -> tuple[Found | None, Convention | None, list[tuple[str, str]]]:
    """The key named explicitly (argument, file, or typed into a ``-H`` header)."""
    checkup = plan.checkup
    if checkup.key is not None:
        return Found(checkup.key, "argument", checkup.key_label), sent, headers
    if checkup.key_file is not None:
        text = read_key_file(checkup.key_file)
        return Found(text, "file", f"key file {checkup.key_file}"), sent, headers
    if checkup.key_env is None and sent is None:
        literal = literal_key(headers, plan.target)
        if literal is not None:
            typed, name, convention, others = literal
            return Found(typed, "header", f"the -H '{name}' header"), convention, others
    return None, sent, headers


def _from_url(plan: _Plan) -> tuple[Found, Convention] | None:
    """The URL's ``user:password@`` as the key of last resort, sent as HTTP Basic (as
    requests and httpx would send it)."""
    if plan.url_user is None:
        return None
    user, password = plan.url_user
    if password is None:
        way = plan.chosen or Convention("Authorization", basic=True)
        return Found(user, "url", "the URL's user"), way
    way = plan.chosen or Convention("Authorization", basic=True, basic_user=user)
    return Found(password, "url", "the URL's user:password"), way


def _url_credentials(plan: _Plan, found: Found | None) -> list[Finding]:
    """``url_credentials`` when the URL has ``user:password@``, saying what became of it."""
    if plan.url_user is None:
        return []
    if found is not None and found.source == "url":
        detail = (
            "the URL has user:password@ before its host, and no other key was given: the "
            "doctor sends it as HTTP Basic, as requests and httpx do, not in the URL"
        )
    else:
        detail = (
            "the URL has user:password@ before its host: requests and httpx send those as "
            "'Authorization: Basic …' instead of the key your code sets; the doctor sent the "
            "key, not them"
        )
    return [finding("url_credentials", detail)]


def _key_step(plan: _Plan) -> _KeyFound:
    checkup = plan.checkup
    given, sent, headers = _given(plan, *split_headers(_pairs(checkup.headers)))
    names = candidate_names(checkup.key_env, plan.target.env if plan.target else ())
    search = search_key(
        names,
        given=given,
        dotenv_path=find_dotenv_file(checkup.dotenv),
        environ=plan.env,
        use_keyring=checkup.use_keyring,
    )
    from_url = _from_url(plan) if search.chosen is None else None
    if from_url is not None:
        search.chosen, sent = from_url
    step = Step("key", summary=f"looked for {', '.join(names)}")
    step.add(*search.findings())
    step.add(*_url_credentials(plan, search.chosen))
    if plan.url:
        step.add(*netrc_findings(host_of(plan.url), plan.env))
    found = _KeyFound(step, None, None, [], sent, headers)
    if search.chosen is not None:
        cleaned = clean(search.chosen.value, search.chosen.where)
        step.add(*cleaned.findings)
        found.value, found.where = cleaned.key, search.chosen.where
        found.secrets = [s for s in (search.chosen.value, cleaned.key) if s]
        step.summary = f"{search.chosen.where}: {mask_found(cleaned.key)}"
    step.close()
    return found


# -- step 2's input: how the request carries the key ----------------------------------------


def _sending(plan: _Plan, found: _KeyFound) -> tuple[Sent, list[tuple[str, str]]]:
    """The convention the probe uses (the user's, else the documented one) and the other
    headers it sends (with the provider's required headers when the doctor chooses)."""
    convention = found.sent or plan.chosen
    chosen = convention is not None
    headers = list(found.headers)
    target = plan.target
    if convention is None:
        convention = BEARER
        if target is not None:
            kind = identify_key(found.value, target).key_type if found.value else None
            convention = documented(target, kind, plan.env)
    if target is not None and not chosen:
        have = {n.lower() for n, _ in headers}
        headers += [
            (n, v)
            for n, v in required_headers(target, plan.env)
            if v is not None and n.lower() not in have
        ]
    return Sent(convention, chosen, tuple(n for n, _ in headers)), headers


# -- step 4: the probe ----------------------------------------------------------------------


def _skip_reason(plan: _Plan, key: str | None, steps: list[Step]) -> str:
    url = plan.url
    if url is None:
        return "no URL given: offline checks only"
    if not plan.checkup.probe:
        return "--no-probe: offline checks only"
    if key is None:
        return "no key to send"
    if not sendable(key):
        return "the key holds characters no HTTP header can carry: the doctor did not send it"
    if "key_provider_mismatch" in codes_in(steps):
        return f"the key belongs to another API: the doctor does not send it to {host_of(url)}"
    if insecure(url) and not plan.checkup.allow_insecure:
        return "plain http:// to another host: the key was not sent (--allow-insecure sends it)"
    return ""


def _probe(
    plan: _Plan,
    found: _KeyFound,
    sent: Convention,
    headers: list[tuple[str, str]],
    identity: Identity,
    report: Report,
    scrub: Scrubber,
) -> None:
    """Send the request (and, if asked, the variants) within one deadline; add the probe
    step to ``report``."""
    assert plan.url is not None and found.value is not None
    url, key, method = plan.url, found.value, plan.method
    step = Step("probe")
    report.steps.append(step)
    with (
        client(transport=plan.checkup.transport) as transport,
        Deadline(plan.checkup.timeout) as deadline,
    ):
        sender = Sender(transport, deadline, scrub)
        exchange = sender.send(method, url, headers, sent, key)
        answer = exchange.answer
        report.probe = Probe(
            method,
            report.url or url,
            sent.describe(),
            answer.status if answer else None,
            tuple(exchange.redirects),
        )
        report.ok = _read(step, exchange, plan, sent, codes_in(report.steps))
        # Another way can only help where the request, not the key's rights, was refused.
        refused = bool(codes_in([step]) & {"server_rejected_key", "rejected_as_sent"})
        if refused and plan.checkup.try_other_ways:
            _variants(sender, plan, found, sent, headers, identity, report)
    step.summary = step.summary or f"{method} {report.url}"
    step.close()


def _read(
    step: Step, exchange: Exchange, plan: _Plan, sent: Convention, reported: set[str]
) -> bool:
    """Add what the exchange says to ``step``; whether the request was authorised."""
    shown = f"{plan.method} {without_password(plan.url or '')}"
    answer = exchange.answer
    if exchange.out_of_time:
        step.add(
            finding(
                "connection_failed",
                f"{shown}: no complete answer within {plan.checkup.timeout:g} s (--timeout "
                "bounds the whole probe)",
            )
        )
    elif exchange.error or answer is None:
        step.add(finding("connection_failed", f"{shown}: {exchange.error or 'no answer'}"))
    elif exchange.bad_location is not None:
        step.add(
            finding(
                "redirect_invalid",
                f"{shown} answers {answer.status} with Location: {exchange.bad_location}",
            )
        )
    elif exchange.blocked:
        step.add(dropped(without_password(plan.url or ""), answer.status, exchange.blocked))
    else:
        return judge_answer(step, answer, plan.target, sent, reported, plan.now)
    return False


def _variants(
    sender: Sender,
    plan: _Plan,
    found: _KeyFound,
    sent: Convention,
    headers: list[tuple[str, str]],
    identity: Identity,
    report: Report,
) -> None:
    """``--try-variants``: send the other ways, list each with what it got, and say which
    works."""
    assert plan.url is not None and found.value is not None and report.probe is not None
    step = report.steps[-1]
    options = candidates(sent, headers, plan.target, identity.key_type, plan.env)
    working, tried = try_variants(
        sender, plan.method, plan.url, headers, found.value, options, plan.target
    )
    report.probe = replace(report.probe, variants=tuple(tried))
    if working is not None:
        report.working_variant = working.name
        step.add(*explain_variant(working, sent, codes_in(report.steps)))
    redirects = sum(t.redirects for t in tried)
    followed = f" (and {redirects} same-origin redirect(s))" if redirects else ""
    outcome = f"'{working.name}' works" if working else "none was accepted"
    step.summary = (
        f"{len(tried)} more request(s), each sending the key another way{followed}: {outcome}"
    )
