"""docs/scan.md's pre-commit lines, followed as written, pin a ``rev`` that exists.

The page showed ``rev: v0.1.0``, a tag keyturn does not have: pre-commit then failed on
every commit (``pathspec 'v0.1.0' did not match``). The documented ``pre-commit
autoupdate`` pins the latest tag, or the latest commit while there is none.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def test_the_documented_steps_pin_a_rev_that_exists(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (PROJECT / ".git").exists():
        pytest.skip("needs this project as a git checkout")
    page = (PROJECT / "docs" / "scan.md").read_text()
    snippet = page.split("## Pre-commit", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "pre-commit autoupdate --repo" in page
    url = re.search(r"repo: (\S+)", snippet)
    assert url is not None
    repo = tmp_path / "user-repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".pre-commit-config.yaml").write_text(
        "repos:\n" + snippet.replace(url.group(1), str(PROJECT))
    )
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "autoupdate", "--repo", str(PROJECT)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rev = re.search(r"rev: (\S+)", (repo / ".pre-commit-config.yaml").read_text())
    assert rev is not None
    found = subprocess.run(["git", "rev-parse", "--verify", f"{rev.group(1)}^{{commit}}"],
                           cwd=PROJECT, capture_output=True, text=True)
    assert found.returncode == 0, rev.group(1)
