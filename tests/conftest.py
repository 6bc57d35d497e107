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


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Long strings (generated keys among them) get short ids that are the same in every
    pytest-xdist worker, and test ids never spell out a key."""
    if isinstance(val, str) and len(val) > 24:
        return f"{val[:4]}…{len(val)}"
    return None
