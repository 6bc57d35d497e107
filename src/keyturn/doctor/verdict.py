"""From what the server said to findings: authorised, rejected, forbidden, limited.

An API says "no" in many dialects: a 401 with an RFC 6750 challenge, a 403 that is really a
rate limit, a 400 whose body says the key is invalid, a 200 with ``"ok": false``. The verdict
reads them all with the provider's catalogue entry in hand, and infers the subtler cause
when the server answered as if no key had been sent at all: then the key travelled in a
place the server does not look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from keyturn._providers import Provider
from keyturn.doctor.interpret import Answer, Interpretation
from keyturn.doctor.permissions import (
    Denial,
    denial_finding,
    read_denial,
    rejected_by_signal,
)
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.sending import Convention, accepted, required_headers
from keyturn.outcomes import CATALOGUE

# A message saying no key arrived: "x-api-key header is required", "Missing API key", ...
_NO_KEY = re.compile(
    r"(?i)\b(?:missing|no|not provided|didn'?t provide|did not provide|without)\b"
    r"[^.;]{0,40}\b(?:api[ -]?key|key|token|credentials?|authori[sz]ation)\b"
    r"|\b(?:api[ -]?key|key|token|credentials?|authori[sz]ation)(?: header)?(?: is| are|:)?"
    r" (?:missing|required|not provided)\b(?! (?:permission|scope|role))"
)
_BAD_KEY = re.compile(
    r"(?i)\b(?:invalid|incorrect|unknown|expired|revoked|wrong|bad)\b[^.;,]{0,20}"
    r"\b(?:api[ -]?key|key|token|credentials?)\b"
    r"|\b(?:api[ -]?key|token|credentials?)\b[^.;,]{0,20}\b(?:is )?(?:invalid|not valid|expired"
    r"|revoked)\b"
)
# The account behind a valid key is out of money, in the APIs' own words: OpenAI's 429
# insufficient_quota, Anthropic's 400 "credit balance is too low", OpenRouter's 402
# "Insufficient credits", DeepSeek's 402 "Insufficient Balance". Waiting does not help, and
# the key is fine. (A "quota exceeded" alone is often a per-minute quota: a rate limit.) A
# provider whose own code says it, in words of its own, names the code in the catalogue
# (``credit_codes``: ElevenLabs' 401 ``quota_exceeded``).
_OUT_OF_CREDIT = re.compile(
    r"(?i)insufficient[ _-]?(?:quota|credits?|balance|funds)|exceeded your current quota"
    r"|credit balance is too low|out of credits?"
)
_OUT_OF_CREDIT_FIX = (
    "Retrying does not help: the account behind the key has used up its credits or reached "
    "its spending limit (the detail quotes the API), and the key itself is not at fault. Add "
    "credits or raise the limit in the provider's billing settings, or use a key of an "
    "account that has credit."
)
_REJECTED_WORDS = re.compile(r"(?i)auth|token|key|credential|login")
_FORBIDDEN_WORDS = re.compile(r"(?i)scope|permission|forbidden|not_allowed|access_denied")


@dataclass(slots=True)
class Verdict:
    authorised: bool
    findings: list[Finding] = field(default_factory=list)


def _kind(answer: Answer, reading: Interpretation, provider: Provider | None) -> str:
    """rejected / forbidden / rate / other."""
    status = reading.status
    if status == 429 or (status == 403 and reading.rate_limit_exhausted):
        return "rate"
    if rejected_by_signal(answer, reading, provider):
        return "rejected"
    by_code = _kind_by_code(reading, provider)
    if by_code:
        return by_code
    if status == 401 or (provider is not None and status in provider.rejected_status):
        return "rejected"
    if status == 403:
        return "forbidden"
    message = reading.message or ""
    if status == 400 and (_BAD_KEY.search(message) or _NO_KEY.search(message)):
        return "rejected"  # "Incorrect API key provided" with a 400 (xAI, Google)
    if reading.declared_failure and reading.code:
        if _FORBIDDEN_WORDS.search(reading.code):
            return "forbidden"
        if _REJECTED_WORDS.search(reading.code):
            return "rejected"
    return "other"


def _kind_by_code(reading: Interpretation, provider: Provider | None) -> str:
    """What the answer's codes say (keyturn's, RFC 6750's, the provider's), or ''."""
    if reading.keyturn_code:
        entry = CATALOGUE[reading.keyturn_code]
        if entry.code == "insufficient_scope":
            return "forbidden"
        if entry.status in (400, 401):
            return "rejected"
    if reading.bearer_error == "insufficient_scope":
        return "forbidden"
    if reading.bearer_error in ("invalid_token", "invalid_request"):
        return "rejected"
    if provider is not None and reading.code:
        if reading.code in provider.rejected_codes:
            return "rejected"
        if reading.code in provider.forbidden_codes:
            return "forbidden"
    return ""


def said_no_key(reading: Interpretation, provider: Provider | None) -> bool:
    """Whether the provider's own wording for "no key arrived" is in the answer."""
    said = " ".join(filter(None, (reading.message, reading.code)))
    return provider is not None and provider.no_key is not None and bool(
        provider.no_key.search(said))


def _as_documented(provider: Provider | None, sent: Convention) -> bool:
    """Whether ``sent`` is a way ``provider`` documents (its wording then decides)."""
    return provider is not None and any(
        sent.same_as(way, ignore_scheme_case=True) or (sent.basic and way.basic)
        for way in accepted(provider)
    )


def server_saw_no_key(
    reading: Interpretation, sent: Convention, provider: Provider | None = None
) -> bool:
    """Whether the answer is the one for a request without a key (RFC 6750 §3.1: a
    challenge with no error; the provider's own wording), given that the request did
    carry one. A key sent the way the provider documents is judged by the provider's own
    wording only ("API token missing/invalid" is not "no key")."""
    if reading.keyturn_code in ("missing_credentials", "unsupported_scheme"):
        return True
    if said_no_key(reading, provider):
        return True
    if _as_documented(provider, sent):
        return False
    if reading.message and _NO_KEY.search(reading.message):
        return True
    bearer = [c for c in reading.challenges if c.is_bearer]
    sent_bearer = sent.header.lower() == "authorization" and sent.scheme.lower() == "bearer"
    return (
        reading.status == 401 and bool(bearer) and reading.bearer_error is None
        and not sent_bearer
    )


# The findings that explain a refusal without blaming the key: a mistake in the way it was
# sent, or no key at all.
WAY_FINDINGS = frozenset(
    {"header_wrong", "scheme_wrong", "scheme_lowercase", "missing_required_header",
     "key_not_set"}
)
_HEADER_REQUIRED = re.compile(
    r"(?i)\b([A-Za-z][\w-]*[A-Za-z0-9]):? header(?: is|:)? (?:required|missing|not (?:set|found))"
    r"|missing (?:required )?header:? ['\"`]?([A-Za-z][\w-]*)"
    r"|\b([A-Za-z][\w-]*-version)\b[^.]{0,40}\b(?:required|missing|invalid|should be)"
)


def judge(answer: Answer, reading: Interpretation, provider: Provider | None,
          sent: Convention, host: str, reported: frozenset[str] = frozenset()) -> Verdict:
    """What ``answer`` says about the key sent ``sent``'s way; ``reported`` are the codes
    the offline steps found (a finding about the way of sending explains a refusal)."""
    status = answer.status
    if 200 <= status < 300 and not reading.declared_failure:
        return Verdict(True, [finding(
            "auth_ok", f"HTTP {status} from {host}, with the key sent as '{sent.describe()}'",
        )])
    reason = reading.reason()
    said = f": {reason}" if reason else ""
    where = f"HTTP {status} from {host}"
    if reading.declared_failure:
        where += " with \"ok\": false in the body"
    kind, denial = _classify(answer, reading, provider, sent)
    verdict = Verdict(False)
    found = verdict.findings
    if _out_of_credit(reading, provider):
        found.append(finding("usage_exceeded", f"{where}{said}", _OUT_OF_CREDIT_FIX))
    elif kind == "rate":
        wait = f"; Retry-After: {reading.retry_after}" if reading.retry_after else ""
        found.append(finding("rate_limited", f"{where}{said}{wait}"))
    elif denial is not None:
        found.append(denial_finding(denial, where, said, provider.name if provider else host))
    elif kind == "rejected":
        found += _rejected(reading, sent, provider, reported, f"{where}{said}")
    else:
        found += _other(answer, reading, provider, reported, where, said)
    if reading.keyturn_code:
        found.append(_keyturn_outcome(reading))
    return verdict


def _out_of_credit(reading: Interpretation, provider: Provider | None) -> bool:
    """Whether another API than keyturn (whose own codes say it) answered that the account
    is out of credit: 402 Payment Required, the provider's own code for it (the
    catalogue's ``credit_codes``), or the words with a 400, 401, 403 or 429."""
    if reading.is_keyturn:
        return False
    if reading.status == 402 or (provider is not None and reading.code in provider.credit_codes):
        return True
    said = " ".join(filter(None, (reading.code, reading.message, reading.error_description)))
    return reading.status in (400, 401, 403, 429) and bool(_OUT_OF_CREDIT.search(said))


def _classify(answer: Answer, reading: Interpretation, provider: Provider | None,
              sent: Convention) -> tuple[str, Denial | None]:
    """(kind, the "valid key, but" if it is one). An answer for want of a key (even a 403
    "unregistered callers") is no permission matter; the provider's own signals are read
    before the wordings any API may use."""
    kind = _kind(answer, reading, provider)
    if kind not in ("rejected", "forbidden"):
        return kind, None if kind == "rate" else _with_scopes(
            read_denial(answer, reading, provider), reading)
    if said_no_key(reading, provider):
        return "rejected", None
    denial = read_denial(answer, reading, provider)
    if denial is None and server_saw_no_key(reading, sent, provider):
        return "rejected", None
    if denial is None and kind == "forbidden":
        denial = Denial("permission")
    return kind, _with_scopes(denial, reading)


def _with_scopes(denial: Denial | None, reading: Interpretation) -> Denial | None:
    """``denial`` naming the scopes an RFC 6750 challenge or a keyturn body names."""
    if denial is None or denial.needed:
        return denial
    scopes = reading.scope or " ".join(reading.required_scopes)
    return replace(denial, needed=tuple(scopes.split()))


def _keyturn_outcome(reading: Interpretation) -> Finding:
    assert reading.keyturn_code is not None
    problem = reading.problem or {}
    detail = str(problem.get("detail") or CATALOGUE[reading.keyturn_code].title)
    said = finding(reading.keyturn_code, f"the keyturn service says: {detail}",
                   reading.keyturn_hint or "")
    return replace(said, url=reading.keyturn_page or "")


def _rejected(reading: Interpretation, sent: Convention, provider: Provider | None,
              reported: frozenset[str], said: str) -> list[Finding]:
    """A refusal of the key: the key's fault only if nothing else explains it."""
    cause = None  # from the answer, when nothing found offline already explains it
    if not reported & WAY_FINDINGS and server_saw_no_key(reading, sent, provider):
        cause = _not_found_there(reading, sent)
    found = [cause] if cause is not None and cause.code not in reported else []
    explained = sorted(reported & WAY_FINDINGS) or ([cause.code] if cause else [])
    if explained:
        verb = "explains" if len(explained) == 1 else "explain"
        found.insert(0, finding(
            "rejected_as_sent",
            f"{said}; {' and '.join(explained)} {verb} this answer, so it says nothing yet "
            "about the key itself",
        ))
        return found
    return [finding("server_rejected_key", said)]


def _other(answer: Answer, reading: Interpretation, provider: Provider | None,
           reported: frozenset[str], where: str, said: str) -> list[Finding]:
    """Neither success nor a refusal of the key: a missing header, or inconclusive."""
    text = " ".join(filter(None, (reading.message, reading.error_description, reading.code)))
    named = _HEADER_REQUIRED.search(text)
    header = next((g for g in named.groups() if g), "") if named else ""
    keyish = header.lower() in ("authorization", "x-api-key", "api-key")
    if header and not keyish:
        value = dict((n.lower(), v) for n, v in required_headers(provider)).get(header.lower())
        found = [finding(
            "rejected_as_sent",
            f"{where}{said}; the server names the header '{header}' as missing or wrong, so "
            "this answer says nothing about the key",
        )]
        if "missing_required_header" not in reported:
            found.append(finding(
                "missing_required_header",
                f"the server says the request lacks a valid '{header}' header",
                f"add '{header}: {value}'" if value else f"add the '{header}' header the API "
                "documents",
            ))
        return found
    if "missing_required_header" in reported and 400 <= answer.status < 500:
        return [finding(
            "rejected_as_sent",
            f"{where}{said}; the request lacks a header the API requires "
            "(missing_required_header), which explains this answer",
        )]
    body = said or (f": {answer.text()}" if answer.body else "")
    return [finding("probe_inconclusive", f"{where}{body}")]


def _not_found_there(reading: Interpretation, sent: Convention) -> Finding | None:
    """The server answered as if no key was sent: name the scheme or header it wants."""
    asked = [c.scheme for c in reading.challenges]
    sent_scheme = sent.scheme
    if sent.header.lower() == "authorization" and asked:
        lowered = [a.lower() for a in asked]
        if sent_scheme.lower() in lowered:
            wanted = asked[lowered.index(sent_scheme.lower())]
            if wanted != sent_scheme:
                return finding(
                    "scheme_lowercase",
                    f"the server challenges with '{wanted}' and did not accept "
                    f"'{sent.describe()}': it compares the scheme case-sensitively",
                    f"write 'Authorization: {wanted} <key>'",
                )
            return None  # sent exactly as asked: the cause is elsewhere
        return finding(
            "scheme_wrong",
            f"the server asks for the '{asked[0]}' scheme (WWW-Authenticate) and answered "
            f"as if no key was sent; the request sends '{sent.describe()}'",
            f"send 'Authorization: {asked[0]} <key>'",
        )
    if reading.keyturn_code == "unsupported_scheme":
        return finding("scheme_wrong", f"the server does not accept '{sent.describe()}'",
                       "send 'Authorization: Bearer <key>'")
    hint = f" and asks for the '{asked[0]}' scheme" if asked else ""
    return finding(
        "header_wrong",
        f"the server answered as if no key was sent{hint}: it does not read the key from "
        f"'{sent.describe()}'",
        f"send 'Authorization: {asked[0]} <key>'" if asked else "",
    )
