"""``keyturn doctor``: why does this API answer 401 (or 403) to my key?

The checkup runs four steps (key present and clean, format, validity, probe) and reports
findings from the outcome catalogue, so every code it names is explained by
``keyturn explain CODE``. The key itself never appears in a report, only its mask, and is
never sent anywhere but the origin of the URL given.

    from keyturn.doctor import diagnose
    report = diagnose("https://api.openai.com/v1/models")
    print(report.ok, report.codes)
"""

from __future__ import annotations

from keyturn._extras import require

require("doctor", "keyturn.doctor")

from keyturn.doctor.challenge import Challenge, parse_challenges
from keyturn.doctor.checkup import Checkup, diagnose
from keyturn.doctor.hook import KeyRejected, araise_on_auth_failure, raise_on_auth_failure
from keyturn.doctor.render import render_json, render_markdown, render_text
from keyturn.doctor.report import Finding, Probe, Report, Step
from keyturn.doctor.response import explain_response

__all__ = [
    "Challenge",
    "Checkup",
    "Finding",
    "KeyRejected",
    "Probe",
    "Report",
    "Step",
    "araise_on_auth_failure",
    "diagnose",
    "explain_response",
    "parse_challenges",
    "raise_on_auth_failure",
    "render_json",
    "render_markdown",
    "render_text",
]
