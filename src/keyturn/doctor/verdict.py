"""From what the server said to findings: authorised, rejected, forbidden, limited.

An API says "no" in many dialects: a 401 with an RFC 6750 challenge, a 403 that is really a
rate limit, a 400 whose body says the key is invalid, a 200 with ``"ok": false``. The verdict
reads them all with the provider's catalogue entry in hand, and infers the subtler cause
when the server answered as if no key had been sent at all: then the key travelled in a
place the server does not look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from keyturn.doctor.interpret import Answer, Interpretation
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.sending import Convention
from keyturn.outcomes import CATALOGUE
from keyturn.providers import Provider

# A message saying no key arrived: "x-api-key header is required", "Missing API key", ...
_NO_KEY = re.compile(
    r"(?i)\b(?:missing|no|not provided|didn'?t provide|did not provide|without)\b"
    r".{0,40}\b(?:key|token|credentials?|authori[sz]ation)\b"
    r"|\b(?:key|token|credentials?|authori[sz]ation)\b.{0,40}\b(?:is |are )?"
    r"(?:missing|required|not provided)\b"
)
_REJECTED_WORDS = re.compile(r"(?i)auth|token|key|credential|login")
_FORBIDDEN_WORDS = re.compile(r"(?i)scope|permission|forbidden|not_allowed|access_denied")


@dataclass(slots=True)
class Verdict:
    authorised: bool
    findings: list[Finding] = field(default_factory=list)


def _kind(reading: Interpretation, provider: Provider | None) -> str:
    """rejected / forbidden / rate / other."""
    status = reading.status
    if status == 429 or (status == 403 and reading.rate_limit_exhausted):
        return "rate"
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
    if status == 401:
        return "rejected"
    if status == 403:
        return "forbidden"
    if reading.declared_failure and reading.code:
        if _FORBIDDEN_WORDS.search(reading.code):
            return "forbidden"
        if _REJECTED_WORDS.search(reading.code):
            return "rejected"
    return "other"


def server_saw_no_key(reading: Interpretation, sent: Convention) -> bool:
    """Whether the answer is the one for a request without a key (RFC 6750 §3.1: a
    challenge with no error), given that the request did carry one."""
    if reading.keyturn_code in ("missing_credentials", "unsupported_scheme"):
        return True
    if reading.message and _NO_KEY.search(reading.message):
        return True
    bearer = [c for c in reading.challenges if c.is_bearer]
    sent_bearer = sent.header.lower() == "authorization" and sent.scheme.lower() == "bearer"
    return (
        reading.status == 401 and bool(bearer) and reading.bearer_error is None
        and not sent_bearer
    )


def judge(answer: Answer, reading: Interpretation, provider: Provider | None,
          sent: Convention, host: str) -> Verdict:
    status = answer.status
    if 200 <= status < 300 and not reading.declared_failure:
        return Verdict(True, [finding(
            "auth_ok", f"HTTP {status} from {host}, with the key sent as '{sent.describe()}'",
        )])
    reason = reading.reason()
    said = f": {reason}" if reason else ""
    verdict = Verdict(False)
    kind = _kind(reading, provider)
    where = f"HTTP {status} from {host}"
    if reading.declared_failure:
        where += " with \"ok\": false in the body"
    if kind == "rate":
        wait = f"; Retry-After: {reading.retry_after}" if reading.retry_after else ""
        verdict.findings.append(finding("rate_limited", f"{where}{said}{wait}"))
    elif kind == "forbidden":
        needed = reading.scope or " ".join(reading.required_scopes)
        need = f"; required scope: {needed}" if needed else ""
        verdict.findings.append(finding("insufficient_permissions", f"{where}{said}{need}"))
    elif kind == "rejected":
        verdict.findings.append(finding("server_rejected_key", f"{where}{said}"))
    else:
        body = said or (f": {answer.text()}" if answer.body else "")
        verdict.findings.append(finding("probe_inconclusive", f"{where}{body}"))
    if reading.keyturn_code:
        problem = reading.problem or {}
        detail = str(problem.get("detail") or CATALOGUE[reading.keyturn_code].title)
        verdict.findings.append(
            finding(reading.keyturn_code, f"the keyturn service says: {detail}",
                    reading.keyturn_hint or "")
        )
    if kind in ("rejected", "forbidden") and server_saw_no_key(reading, sent):
        cause = _not_found_there(reading, sent)
        if cause is not None:
            verdict.findings.append(cause)
    return verdict


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
