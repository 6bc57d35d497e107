"""What clients wrote reaches an administrator's terminal: ``keyturn keys show`` lists the
paths a rotated key was still used with, from the verification log, and a framework
face records the path as the framework decoded it (``%1b`` is ESC, ``%0a`` a new line).
Printed raw, a path could clear the screen, retitle the terminal, or forge rows of the
table (and break the tab-separated form a script reads). Every table cell the CLI prints
has its control characters escaped (``\\x1b``), as ``keyturn scan`` escapes file names."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.service.conftest import Live, run_cli, start_live

HOSTILE = "/v1/keys/%1b%5d0%3bpwned%07%1b%5b2J%0aforged%09row%e2%80%ae"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("tty"))


def test_client_paths_are_escaped_in_keys_show(live: Live) -> None:
    old, record = live.make_key("orders:read")
    assert live.root.post(f"/v1/keys/{record['id']}/rotate", json={}).status_code in (200, 201)
    # The admin API's own authentication records the decoded path of the old key's use.
    assert live.client(old).get(HOSTILE).status_code in (401, 403, 404)
    deadline = time.monotonic() + 10
    while True:
        shown = run_cli("keys", "show", record["id"], "--db", live.settings.database_url)
        assert shown.returncode == 0, shown.stderr
        if "forged" in shown.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    table = shown.stdout.split("Still used since the rotation by")[1].splitlines()[1:]
    assert len(table) == 2, table  # the heading and one row: no row forged by a new line
    row = table[1].split("\t")
    assert len(row) == 5, row
    assert row[2].startswith("/v1/keys/\\x1b]0;pwned\\x07")
    assert row[2].endswith("\\x0aforged\\x09row\\u202e")
    for char in "\x1b\x07\u202e":
        assert char not in shown.stdout
