"""axe-core in the browser: the accessibility check of every page the browser tests open.

axe-core ships inside axe-playwright-python; its script is evaluated through the browser's
debugging protocol, which a page's Content-Security-Policy does not govern, so pages are
checked under their real policy. Without the package the importing module skips locally
and fails under ``CI=true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_ci

try:
    import axe_playwright_python
except ImportError:
    if in_ci():
        raise
    pytest.skip("axe-playwright-python is not installed", allow_module_level=True)

AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


def accessible(page: Any) -> None:
    """axe-core (WCAG 2.1 A and AA, best practices) finds nothing on the page as it is."""
    page.evaluate(AXE)
    results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
    ]
    assert not found, "\n".join(found)
