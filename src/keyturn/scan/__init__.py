"""``keyturn scan``: keep API keys out of git.

The scanner finds keyturn keys and catalogued providers' keys by shape, checking the
checksum where the format has one (so a random string of the right shape is not a finding),
values assigned to secret-looking names, and ``.env`` files that git tracks or does not
ignore. It reads a tree, the staged index or the whole history, and reports in text, JSON
or SARIF; the secret itself never appears in a report, only its mask.

    from keyturn.scan import Options, scan_paths
    result = scan_paths(["."], Options())
    for finding in result.findings:
        print(finding.path, finding.line, finding.code, finding.masked)
"""

from __future__ import annotations

from keyturn.scan.detect import scan_bytes
from keyturn.scan.exposure import Exposure
from keyturn.scan.scanner import Options, Result, scan_history, scan_paths, scan_staged

__all__ = [
    "Exposure",
    "Options",
    "Result",
    "scan_bytes",
    "scan_history",
    "scan_paths",
    "scan_staged",
]
