"""The checkup's offline steps (format, validity) and its reading of an answer.

Both ways into the doctor use them: ``diagnose`` (which sends its own request) and
``explain_response`` (which reads a response already in hand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from keyturn._providers import Provider
from keyturn.doctor.interpret import Answer, interpret
from keyturn.doctor.lifecycle import lifecycle_findings
from keyturn.doctor.report import Step
from keyturn.doctor.route import check_route
from keyturn.doctor.sending import Convention, check_convention
from keyturn.doctor.shape import Identity, check_shape
from keyturn.doctor.target import host_of
from keyturn.doctor.validity import check_age, check_jwt
from keyturn.doctor.verdict import judge

CREATED_AT_ENV = "KEY_CREATED_AT"


@dataclass(frozen=True, slots=True)
class Sent:
    """How the request carries the key, and whether the user chose that (``--send``, a
    ``-H`` header) or the doctor did (the provider's documented way)."""

    convention: Convention
    chosen: bool
    header_names: tuple[str, ...] = ()


def format_step(
    key: str | None,
    target: Provider | None,
    url: str | None,
    sent: Sent,
    environ: Mapping[str, str],
    *,
    route: bool = True,
) -> tuple[Step, Identity]:
    """Step 2: the key's shape against the catalogue, and the request's way of sending it."""
    step = Step("format")
    identity = Identity()
    host = host_of(url) if url else ""
    if key is not None:
        identity, found = check_shape(key, target, host)
        step.add(*found)
        if sent.chosen:
            step.add(*check_convention(
                sent.convention, target, identity.key_type, sent.header_names, environ
            ))
    if url and route:
        step.add(*check_route(url, environ))
    about = identity.label or ("shape not recognised" if key is not None else "no key")
    api = ""
    if target is not None:
        serves = bool(host) and target.serves(host)
        api = f"; {host} is {target.name}'s API" if serves else f"; treated as {target.name}'s API"
    step.summary = f"{about}{api}; sent as '{sent.convention.describe()}'"
    return step.close(), identity


def validity_step(
    key: str | None, created_at: datetime | None, max_age_days: int, now: datetime
) -> Step:
    """Step 3: the key's age against its maximum, and a JWT's time claims."""
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


def judge_answer(
    step: Step,
    answer: Answer,
    target: Provider | None,
    sent: Convention,
    reported: set[str],
    now: datetime,
) -> bool:
    """Add what ``answer`` says to ``step`` (skipping codes already ``reported``), and, when
    it accepted the key, what it says of the key's future (at ``now``); whether the request
    was authorised."""
    reading = interpret(answer, target)
    verdict = judge(answer, reading, target, sent, host_of(answer.url), frozenset(reported))
    step.add(*(f for f in verdict.findings if f.code not in reported))
    if verdict.authorised:
        step.add(*lifecycle_findings(answer, now))
    return verdict.authorised


def codes_in(steps: Sequence[Step]) -> set[str]:
    return {f.code for s in steps for f in s.findings}


def has_error(steps: Sequence[Step]) -> bool:
    return any(f.severity == "error" for s in steps for f in s.findings)
