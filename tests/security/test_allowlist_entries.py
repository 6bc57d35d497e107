"""An allow-list entry means one thing on every face. An IPv6 zone (``fe80::1%eth0``)
names an interface of the host that wrote it, which the list cannot check: the entry was
stored as ``fe80::1%eth0/128`` by the CLI, the dashboard and the library (the API refused
it), shown so, and admitted ``fe80::1`` from any interface. It is refused, saying why,
wherever an allow-list is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyturn import KeyManager
from keyturn.errors import InvalidValue
from tests.service.conftest import run_cli


@pytest.mark.parametrize("entry", ["fe80::1%eth0", "fe80::%25/64", "fe80::1%1/128"])
def test_a_zone_is_refused_on_the_command_line(tmp_path: Path, entry: str) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = run_cli("keys", "create", "--name", "link", "--allow-ip", entry, "--db", db)
    assert made.returncode == 2, made.stdout
    assert "zone" in made.stderr
    assert run_cli("keys", "list", "--db", db, "--format", "json").stdout.count("key_") == 0


def test_a_zone_is_refused_by_the_library(manager: KeyManager) -> None:
    with pytest.raises(InvalidValue, match="zone") as refused:
        manager.create_key(name="link", allowed_ips=["fe80::1%eth0"])
    assert refused.value.field == "allowed_ips"
