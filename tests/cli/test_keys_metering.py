"""Rate limits and credits through ``keyturn keys create`` and ``keyturn keys update``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_check_cli import run


def test_metering_through_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = json.loads(
        run(
            "keys", "create", "--name", "paid", "--format", "json",
            "--rate-limit", "10000/day", "--rate-limit", "100 per second",
            "--credits", "500", "--refill", "monthly",
            db=db, check=True,
        ).stdout
    )  # fmt: skip
    assert made["rate_limits"] == ["100/second", "10000/day"]
    assert made["credits"] == 500
    assert made["refill"] == {"interval": "monthly", "amount": 500}
    changed = json.loads(
        run(
            "keys", "update", made["id"], "--credits", "7", "--no-rate-limits",
            "--format", "json", db=db, check=True,
        ).stdout
    )  # fmt: skip
    assert (changed["credits"], changed["rate_limits"]) == (7, [])
    assert changed["refill"] == {"interval": "monthly", "amount": 500}
    unlimited = json.loads(
        run(
            "keys", "update", made["id"], "--credits", "unlimited", "--format", "json",
            db=db, check=True,
        ).stdout
    )  # fmt: skip
    assert (unlimited["credits"], unlimited["refill"]) == (None, None)
    for args, message in (
        (["keys", "create", "--name", "x", "--rate-limit", "lots"], "invalid rate limit"),
        (["keys", "update", made["id"], "--credits", "many"], "invalid --credits"),
    ):
        result = run(*args, db=db)
        assert result.returncode == 2 and message in result.stderr, result.stderr
