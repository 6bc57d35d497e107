"""``keyturn owners``: shared limits and all of an owner's keys, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

from keyturn import KeyManager
from tests.cli.test_check_cli import create, run


def test_owner_limits_and_keys_through_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    keys = [create(db, "--name", f"k{i}", "--owner", "acme") for i in range(2)]
    out = run("owners", "set", "acme", "--credits", "3", "--rate-limit", "10/minute",
              "--format", "json", db=db, check=True)  # fmt: skip
    shown = json.loads(out.stdout)
    assert shown["credits"] == 3 and shown["rate_limits"] == ["10/minute"]
    assert shown["keys"]["active"] == 2
    with KeyManager(db) as manager:
        codes = [manager.verify_key(keys[i % 2]["key"]).code for i in range(4)]
    assert codes == ["valid", "valid", "valid", "usage_exceeded"]
    text = run("owners", "show", "acme", db=db, check=True).stdout
    assert "credits_left" in text and "usage_exceeded=1" in text
    disabled = run("owners", "disable", "acme", db=db, check=True).stdout
    assert "2 key(s) of acme disabled" in disabled
    revoked = json.loads(run("owners", "revoke", "acme", "--format", "json", db=db,
                             check=True).stdout)  # fmt: skip
    assert {k["status"] for k in revoked["changed"]} == {"revoked"}
    events = json.loads(run("keys", "list", "--owner", "acme", "--format", "json", db=db,
                            check=True).stdout)  # fmt: skip
    assert {k["status"] for k in events["keys"]} == {"revoked"}


def test_bad_owner_input_is_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    KeyManager(db).close()
    missing = run("owners", "show", "nobody", db=db)
    assert missing.returncode == 2 and "no owner" in missing.stderr
    bad = run("owners", "set", "acme", "--rate-limit", "lots", db=db)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_an_owner_with_a_slash_is_one_name_to_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    create(db, "--name", "k", "--owner", "team/payments")
    create(db, "--name", "j", "--owner", "team")
    shown = json.loads(run("owners", "set", "team/payments", "--credits", "4", "--format",
                           "json", db=db, check=True).stdout)  # fmt: skip
    assert shown["owner"] == "team/payments" and shown["keys"]["active"] == 1
    done = run("owners", "disable", "team/payments", db=db, check=True).stdout
    assert "1 key(s) of team/payments disabled" in done
    assert json.loads(run("owners", "show", "team", "--format", "json", db=db,
                          check=True).stdout)["keys"]["active"] == 1  # fmt: skip
