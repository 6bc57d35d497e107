"""The store and manager tests are a conformance suite: each runs against every engine."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(store_url: str) -> str:
    return store_url
