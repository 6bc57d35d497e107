"""An httpx event hook that turns a 401/403 into an exception carrying the diagnosis.

    client = httpx.Client(event_hooks={"response": [raise_on_auth_failure]})

The exception is an ``httpx.HTTPStatusError``, so code that already handles those keeps
working, and its message says why the key was refused instead of just "401 Unauthorized".
"""

from __future__ import annotations

import httpx

from keyturn.doctor.report import Report
from keyturn.doctor.response import explain_response

AUTH_FAILURES = frozenset({401, 403})


class KeyRejected(httpx.HTTPStatusError):
    """A 401/403 with ``report``, the doctor's diagnosis of it (the key masked)."""

    def __init__(self, report: Report, response: httpx.Response) -> None:
        super().__init__(summary(report, response), request=response.request, response=response)
        self.report = report


def summary(report: Report, response: httpx.Response) -> str:
    """One paragraph: status, then each error with its fix."""
    errors = [f for f in report.findings if f.severity == "error"]
    lines = [f"HTTP {response.status_code} from {response.url.host}: the key was not accepted"]
    for found in errors:
        lines.append(f"- {found.code}: {found.detail} (fix: {found.fix})")
    if report.working_variant:
        lines.append(f"- working variant: {report.working_variant}")
    return "\n".join(lines)


def raise_on_auth_failure(response: httpx.Response) -> None:
    """Response hook for ``httpx.Client``: raise ``KeyRejected`` on 401 and 403."""
    if response.status_code in AUTH_FAILURES:
        response.read()
        raise KeyRejected(explain_response(response), response)


async def araise_on_auth_failure(response: httpx.Response) -> None:
    """Response hook for ``httpx.AsyncClient``."""
    if response.status_code in AUTH_FAILURES:
        await response.aread()
        raise KeyRejected(explain_response(response), response)
