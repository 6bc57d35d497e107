"""Text a key holder wrote reaches an operator's terminal: a key's name, owner and metadata
are set through the admin API (any ``keys:write`` key) and shown by ``keyturn keys show``,
``rotate``, ``revoke`` and ``owners revoke``. Names refused C0 controls but took C1 ones
(U+009B is a terminal's CSI, as ESC [ is), metadata takes any text but NUL, and those
commands printed the fields raw: a name could clear the operator's screen, a bidirectional
override reorder the line. Names and owners now refuse C1 controls on every face, and every
field the CLI prints is escaped (``\\x9b``, ``\\u202e``), as its tables were."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.conftest import Live, run_cli, start_live

HOSTILE = "\x1b]0;pwned\x07\x9b2J\u202eevil"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("text"))


@pytest.mark.parametrize("field", ["name", "owner"])
@pytest.mark.parametrize("control", ["\x85", "\x9b", "\x9f", "\x80"])
def test_c1_controls_are_refused_in_names_and_owners(live: Live, field: str, control: str) -> None:
    body = {"name": "ok", field: f"a{control}b"}
    answer = live.root.post("/v1/keys", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].endswith(field)


def test_fields_are_escaped_in_the_cli(live: Live) -> None:
    _, record = live.make_key("orders:read", name="evil\u202ename", owner="acme\u202e",
                              metadata={"note": HOSTILE})  # fmt: skip
    db = ("--db", live.settings.database_url)
    outputs = [
        run_cli("keys", "show", record["id"], *db),
        run_cli("keys", "rotate", record["id"], "--grace", "1h", *db),
        run_cli("keys", "revoke", record["id"], *db),
        run_cli("owners", "revoke", "acme\u202e", *db),
    ]
    for shown in outputs:
        assert shown.returncode == 0, shown.stderr
        for char in "\x1b\x07\x9b\u202e":
            assert char not in shown.stdout, (char, shown.args, shown.stdout)
    assert "\\u202e" in outputs[0].stdout and "\\x9b2J" in outputs[0].stdout
    assert "evil\\u202ename" in outputs[1].stdout
