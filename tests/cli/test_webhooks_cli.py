"""``keyturn webhooks``: the same operations as ``/v1/webhooks``, from a terminal."""

from __future__ import annotations

import json
from pathlib import Path

from tests.service.conftest import run_cli


def test_create_list_deliveries_delete(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    env = {"KEYTURN_WEBHOOK_ALLOW_PRIVATE": "true"}
    assert run_cli("keys", "create", "--name", "a", "--db", db).returncode == 0
    made = run_cli(
        "webhooks", "create", "--url", "http://127.0.0.1:9/hook", "--event", "key.revoked",
        "--db", db, "--format", "json", env=env,
    )
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["key.revoked"]
    listed = run_cli("webhooks", "list", "--db", db, "--format", "json")
    assert json.loads(listed.stdout)["webhooks"][0]["id"] == hook["id"]
    assert hook["secret"] not in listed.stdout
    log = run_cli("webhooks", "deliveries", hook["id"], "--db", db, "--format", "json")
    assert json.loads(log.stdout) == {"deliveries": []}
    deleted = run_cli("webhooks", "delete", hook["id"], "--db", db, "--format", "json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"id": hook["id"], "deleted": True}
    gone = run_cli("webhooks", "delete", hook["id"], "--db", db)
    assert gone.returncode == 2 and "no webhook" in gone.stderr


def test_a_private_url_is_refused_unless_allowed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    assert run_cli("keys", "create", "--name", "a", "--db", db).returncode == 0
    refused = run_cli("webhooks", "create", "--url", "http://169.254.169.254/", "--db", db)
    assert refused.returncode == 2
    assert "non-public address" in refused.stderr
    unknown = run_cli(
        "webhooks", "create", "--url", "https://example.com/", "--event", "key.nope", "--db", db
    )
    assert unknown.returncode == 2 and "unknown event type" in unknown.stderr
