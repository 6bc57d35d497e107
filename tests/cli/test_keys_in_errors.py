"""The command line never prints a key back in an error, as the API and the pages do not.

A key pasted where a key's id belongs (``keyturn keys show <the key>``) answered ``error: no
key with id 'kt_live_...'``, and a key given as an extra argument (``keyturn check <key>``,
which reads the key from stdin) came back in click's ``Got unexpected extra argument
(kt_live_...)``: stderr goes to terminals shared on screen, CI logs and log collectors.
Every error line is masked where the command line prints it. The real ``keyturn`` command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keyturn.keys import mask
from tests.cli.test_composition import made, run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"KEYTURN_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"}


@pytest.mark.parametrize(
    "command",
    [
        ("keys", "show", "{key}"),
        ("keys", "show", "{key}", "--format", "json"),
        ("keys", "revoke", "{key}"),
        ("keys", "rotate", "{key}"),
        ("keys", "disable", "{key}"),
        ("keys", "update", "{key}", "--credits", "5"),
        ("check", "{key}"),
        ("keys", "list", "{key}"),
    ],
)
def test_a_pasted_key_is_masked_in_the_error(command: tuple[str, ...], env: dict[str, str]) -> None:
    key = made("--name", "pasted", env=env)["key"]
    result = run(*(part.format(key=key) for part in command), env=env)
    assert result.returncode in (1, 2), (result.returncode, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert key.rpartition("_")[2] not in result.stderr + result.stdout
    assert mask(key) in result.stderr
