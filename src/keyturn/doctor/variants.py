"""``--try-variants``: after a 401/403, find the way of sending the key that works.

The doctor retries the same origin with the other common conventions (and with any header
the provider requires but the request lacked). The first one accepted names the fix exactly:
"send it in x-api-key, with anthropic-version". Only the origin the user named is contacted,
and no variant puts the key in a URL unless the provider documents that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keyturn._providers import KeyType, Provider
from keyturn.doctor.interpret import interpret
from keyturn.doctor.probe import Exchange, Sender
from keyturn.doctor.report import Finding, Tried, finding
from keyturn.doctor.sending import Convention, accepted, parse_send, required_headers

COMMON = ("bearer", "x-api-key", "token", "header:api-key", "basic")


@dataclass(frozen=True, slots=True)
class Variant:
    convention: Convention
    added: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        extra = "".join(f" + {name}" for name, _ in self.added)
        return self.convention.name + extra

    def describe(self) -> str:
        extra = "".join(f", with '{n}: {v}'" for n, v in self.added)
        return f"'{self.convention.describe()}'{extra}"


def candidates(
    sent: Convention,
    headers: Sequence[tuple[str, str]],
    provider: Provider | None,
    key_type: KeyType | None,
    environ: Mapping[str, str],
) -> list[Variant]:
    """Variants worth trying, the provider's documented ways first."""
    have = {n.lower() for n, _ in headers}
    missing = tuple(
        (n, v) for n, v in required_headers(provider, environ) if v and n.lower() not in have
    )
    ways = accepted(provider, key_type, environ) if provider else []
    ways += [parse_send(name) for name in COMMON]
    unique: list[Convention] = []
    for way in ways:
        if not any(way.same_as(u) for u in unique):
            unique.append(way)
    found = [Variant(sent, missing)] if missing else []
    found += [Variant(way, missing) for way in unique if not way.same_as(sent)]
    return found


def _outcome(exchange: Exchange, provider: Provider | None) -> tuple[bool, str]:
    """(accepted, what came back) for one variant's exchange."""
    answer = exchange.answer
    if exchange.out_of_time:
        return False, "no answer within --timeout"
    if exchange.error or answer is None:
        return False, exchange.error or "no answer"
    if exchange.blocked:
        return False, f"redirected to another origin ({exchange.blocked}), not followed"
    if exchange.bad_location:
        return False, "redirected to a Location that is not a URL"
    if not 200 <= answer.status < 300:
        return False, f"HTTP {answer.status}"
    if interpret(answer, provider).declared_failure:
        return False, f"HTTP {answer.status}, failure declared in the body"
    return True, f"HTTP {answer.status}"


def try_variants(
    sender: Sender,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    key: str,
    variants: Sequence[Variant],
    provider: Provider | None,
) -> tuple[Variant | None, list[Tried]]:
    """Send each variant in turn until one is authorised: (that one, every one sent with
    what it got). No redirect is followed off the origin; the deadline covers them all."""
    tried: list[Tried] = []
    for variant in variants:
        if sender.deadline.passed:
            break
        exchange = sender.send(
            method, url, [*headers, *variant.added], variant.convention, key
        )
        accepted, result = _outcome(exchange, provider)
        status = exchange.answer.status if exchange.answer else None
        tried.append(Tried(variant.name, variant.describe(), status, result,
                           len(exchange.redirects)))
        if accepted:
            return variant, tried
    return None, tried


def explain_variant(variant: Variant, sent: Convention, reported: set[str]) -> list[Finding]:
    """What a working variant proves about the request as the user sends it."""
    found = [finding("variant_works", f"the server accepted the key sent as {variant.describe()}",
                     f"send the key as {variant.describe()}")]
    way = variant.convention
    if not way.same_as(sent):
        if way.same_as(sent, ignore_scheme_case=True):
            code = "scheme_lowercase"
        elif way.header and way.header.lower() == sent.header.lower():
            code = "scheme_wrong"
        else:
            code = "header_wrong"
        if code not in reported:
            found.append(finding(
                code,
                f"confirmed by a retry: '{way.describe()}' works where '{sent.describe()}' "
                "did not",
                f"send '{way.describe()}'",
            ))
    if variant.added and "missing_required_header" not in reported:
        names = ", ".join(f"'{n}: {v}'" for n, v in variant.added)
        found.append(finding(
            "missing_required_header",
            f"confirmed by a retry: the request works once it also sends {names}",
            f"add {names} to every request",
        ))
    return found
