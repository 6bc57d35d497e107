"""``trusted_proxies = 0.0.0.0/0`` believes every peer's forwarding headers: any client that
reaches the server can name any address. ``keyturn serve`` says so when it starts (it is
not refused: a server reachable only through its ingress may mean it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.service.conftest import ServeProcess


@pytest.mark.parametrize(
    ("trusted", "warned"), [("0.0.0.0/0,10.0.0.0/8", True), ("10.0.0.0/8,::1", False)]
)
def test_serve_warns_when_it_believes_everyone(tmp_path: Path, trusted: str, warned: bool) -> None:
    env = {**os.environ, "KEYTURN_TRUSTED_PROXIES": trusted}
    with ServeProcess("--db", f"sqlite:///{tmp_path / 'k.db'}", env=env, cwd=tmp_path) as serve:
        stderr = serve.stderr
        serve.stop()
    assert ("trusted_proxies lists 0.0.0.0/0" in stderr) is warned
