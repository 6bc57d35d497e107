"""Start the slowest scan test first, so pytest-xdist overlaps it with all the others."""

from __future__ import annotations

import pytest

SLOW = "test_precommit.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name != SLOW or item.path.parent.name != "scan")
