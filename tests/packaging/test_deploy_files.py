"""What can be checked of the deployment files without running them: the Dockerfile's
promises (non-root, /readyz healthcheck, root key to a file on the volume), the compose
file's shape (two instances on PostgreSQL and Redis behind the proxy), and the systemd unit
(by systemd-analyze, where it is installed). test_container.py runs the image itself."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.packaging.conftest import ROOT

DEPLOY = ROOT / "deploy"


def final_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    start = max(i for i, ln in enumerate(lines) if ln.upper().startswith("FROM "))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines[start:]]


def test_the_image_runs_as_a_user_with_a_health_check_and_a_key_file() -> None:
    stage = final_stage()
    users = [args for op, args in stage if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    (health,) = [args for op, args in stage if op == "HEALTHCHECK"]
    assert "/readyz" in health
    (entry,) = [args for op, args in stage if op == "ENTRYPOINT"]
    assert '"serve"' in entry and '"--root-key-file", "/data/root-key"' in entry
    assert ("VOLUME", '["/data"]') in stage
    installs = " ".join(args for op, args in stage if op == "RUN")
    assert "keyturn[serve,postgres,redis]" in installs


def test_the_compose_file_runs_two_instances_behind_a_proxy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    instances = [s for name, s in services.items() if name.startswith("keyturn-")]
    assert len(instances) == 2
    for service in instances:
        assert service["read_only"] is True
        assert service["environment"]["KEYTURN_DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["KEYTURN_REDIS_URL"].startswith("redis://")
        assert "keyturn-data:/data" in service["volumes"]
    assert services["keyturn-2"]["depends_on"]["keyturn-1"]["condition"] == "service_healthy"
    assert {"postgres", "redis", "proxy"} <= set(services)
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server keyturn-1:8080;" in nginx and "server keyturn-2:8080;" in nginx


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = (DEPLOY / "keyturn.service").read_text()
    assert "--root-key-file /var/lib/keyturn/root-key" in unit
    # The unit names /opt/keyturn; verified against this environment's keyturn instead.
    here = Path(sys.executable).parent / "keyturn"
    (tmp_path / "keyturn.service").write_text(unit.replace("/opt/keyturn/bin/keyturn", str(here)))
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "keyturn.service")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
