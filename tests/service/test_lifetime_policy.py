"""The lifetime policy through ``keyturn serve``: refused with a 422 that names the limit."""

from __future__ import annotations

from pathlib import Path

from .conftest import run_cli


def test_max_lifetime_is_a_422_naming_the_limit_on_the_api_and_cli(tmp_path: Path) -> None:
    from datetime import timedelta

    from .conftest import start_live

    lives = start_live(tmp_path, max_lifetime=timedelta(days=366), require_expiry=True)
    live = next(lives)
    try:
        too_long = live.root.post("/v1/keys", json={"name": "a", "expires_in": 400 * 86400})
        assert too_long.status_code == 422
        problem = too_long.json()
        assert "366 days (max_lifetime)" in problem["detail"]
        assert problem["errors"][0]["field"] == "body.expires_in"
        never = live.root.post("/v1/keys", json={"name": "a", "expires_in": None})
        assert never.status_code == 422
        made = live.root.post("/v1/keys", json={"name": "a", "expires_in": 300 * 86400})
        assert made.status_code == 201
        later = live.root.patch(
            f"/v1/keys/{made.json()['id']}", json={"expires_at": "2099-01-01T00:00:00Z"}
        )
        assert later.status_code == 422 and "max_lifetime" in later.json()["detail"]
    finally:
        lives.close()
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    done = run_cli(
        "keys", "create", "--name", "b", "--expires-in", "400d", "--db", db,
        env={"KEYTURN_MAX_LIFETIME": "366d"},
    )
    assert done.returncode == 2
    assert "366 days (max_lifetime)" in done.stderr


def test_the_root_key_says_how_long_it_lives_under_a_lifetime_policy(tmp_path: Path) -> None:
    for name, env, said in (("free.db", {}, "no expiry"),
                            ("policy.db", {"KEYTURN_MAX_LIFETIME": "30d"}, "expires 20")):
        made = run_cli("init", "--db", f"sqlite:///{tmp_path / name}", env=env)
        assert made.returncode == 0, made.stderr
        assert said in made.stdout + made.stderr
        assert ("no expiry" in made.stdout + made.stderr) == (said == "no expiry")
