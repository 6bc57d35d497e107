"""Shared by the examples: issue a short-lived test key to try them with, and say how."""

from __future__ import annotations

import os
from datetime import timedelta

from keyturn import KeyManager

DATABASE = os.environ.get("KEYTURN_DATABASE_URL", "sqlite:///keyturn-example.db")
# The examples' own database, made here if it is new: the integrations only read keys and
# refuse a database that does not exist (a real app points them at its server's).
KeyManager(DATABASE).close()


def print_demo_key(manager: KeyManager, base_url: str) -> None:
    """A key holding ``items:read`` (not ``admin``), valid for a day, shown once."""
    issued = manager.create_key(
        "example", scopes=["items:read"], prefix="kt_test", expires_in=timedelta(days=1)
    )
    print(f"demo key (items:read, 1 day): {issued.key}")
    print(f"  curl -H 'Authorization: Bearer {issued.key}' {base_url}/items     -> 200")
    print(f"  curl -H 'x-api-key: {issued.key}' {base_url}/admin              -> 403")
    print(f"  curl {base_url}/items                                            -> 401")
