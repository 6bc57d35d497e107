"""Shared fixtures: real SQLite stores in a temporary folder, never a shared file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyturn import KeyManager


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keyturn.db'}"


@pytest.fixture
def manager(db_url: str) -> Iterator[KeyManager]:
    with KeyManager(db_url) as m:
        yield m


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
