"""The Dockerfile's image: `keyturn serve` as a non-root user on a read-only root filesystem,
healthy by `/readyz`, the root key in a file on its volume (never the log), surviving a
restart with that volume. Runs where a container engine (Docker or Podman) answers; skips
only where none can run, or where its base image cannot be pulled (no registry)."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.packaging.conftest import ROOT


def _engine() -> str | None:
    for name in ("docker", "podman"):
        found = shutil.which(name)
        if found and subprocess.run([found, "info"], capture_output=True,
                                    timeout=60).returncode == 0:
            return found
    return None


@pytest.fixture(scope="module")
def engine() -> str:
    found = _engine()
    if found is None:
        pytest.skip("no container engine runs here (docker/podman info fails)")
    return found


def run(engine: str, *args: str, timeout: float = 900) -> str:
    done = subprocess.run([engine, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{engine} {args}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def base_images() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    return sorted({line.split()[1] for line in text.splitlines() if line.startswith("FROM ")})


@pytest.fixture(scope="module")
def image(engine: str) -> Iterator[str]:
    for base in base_images():
        present = subprocess.run([engine, "image", "inspect", base], capture_output=True)
        if present.returncode != 0 and subprocess.run(
            [engine, "pull", base], capture_output=True, timeout=600
        ).returncode != 0:
            pytest.skip(f"the engine runs, but the base image {base} cannot be had here")
    tag = f"keyturn-test:{secrets.token_hex(4)}"
    run(engine, "build", "-t", tag, str(ROOT))
    yield tag
    subprocess.run([engine, "rmi", "-f", tag], capture_output=True)


def status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def healthy(engine: str, container: str, base: str) -> None:
    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline:
        state = run(engine, "inspect", "-f", "{{json .State.Health.Status}}", container)
        if json.loads(state) == "healthy" and status(f"{base}/readyz") == 200:
            return
        time.sleep(1)
    pytest.fail(f"not healthy: {state}\n{run(engine, 'logs', container)}")


def test_the_container_serves_and_survives_a_restart_with_its_volume(
    engine: str, image: str
) -> None:
    name = f"keyturn-test-{secrets.token_hex(4)}"
    volume = f"{name}-data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    run(engine, "volume", "create", volume)
    try:
        run(engine, "run", "-d", "--name", name, "--read-only", "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{volume}:/data", image)
        healthy(engine, name, base)
        assert run(engine, "exec", name, "id", "-u") != "0"
        root_key = run(engine, "exec", name, "cat", "/data/root-key")
        bearer = {"Authorization": f"Bearer {root_key}"}
        assert status(f"{base}/auth", bearer) == 204
        assert status(f"{base}/auth", {"Authorization": "Bearer kt_nope"}) == 401
        logs = subprocess.run([engine, "logs", name], capture_output=True, text=True)
        assert root_key not in logs.stdout + logs.stderr

        run(engine, "restart", name)
        healthy(engine, name, base)
        assert status(f"{base}/auth", bearer) == 204  # the same database, on the volume
        assert run(engine, "exec", name, "cat", "/data/root-key") == root_key
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True)
        subprocess.run([engine, "volume", "rm", "-f", volume], capture_output=True)
