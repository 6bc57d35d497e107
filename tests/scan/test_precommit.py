"""The pre-commit hook, run for real: pre-commit installs this checkout as a hook repository.

pre-commit clones the repository at ``rev`` from its local path (no internet for keyturn
itself) and pip-installs it into the hook's own environment, pulling keyturn's
dependencies from the package index. That install is the slow part (tens of seconds), so
everything is checked in one test against one environment, and pre-commit's store lives in
pytest's cache folder: pre-commit keys environments by repository and ``rev``, so a later
run at the same commit reuses the one built for it (``pre-commit gc`` drops stale ones).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scan import keygen
from tests.scan.repo import GIT_ENV, Repo

PROJECT = Path(__file__).resolve().parents[2]


def _head() -> str | None:
    if shutil.which("git") is None or not (PROJECT / ".git").exists():
        return None
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or None


def test_pre_commit_blocks_a_key_and_passes_a_clean_commit(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rev = _head()
    if rev is None:
        pytest.skip("needs this project as a git checkout")
    shown = subprocess.run(["git", "show", f"{rev}:.pre-commit-hooks.yaml"], cwd=PROJECT,
                           capture_output=True, check=False)
    assert shown.returncode == 0, "commit .pre-commit-hooks.yaml: pre-commit reads it at rev"
    repo = Repo(tmp_path / "user-repo")
    # The four lines docs/scan.md gives, with this checkout as the hook repository.
    repo.write(".pre-commit-config.yaml", f"repos:\n-   repo: {PROJECT}\n    rev: {rev}\n"
               "    hooks:\n    -   id: keyturn-scan\n")
    repo.commit("config")
    home = request.config.cache.mkdir("keyturn-pre-commit") if request.config.cache else (
        tmp_path / "pre-commit-home")
    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}

    def pre_commit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=repo.root,
                              env=env, capture_output=True, text=True, timeout=600)

    key = keygen.github_checksummed("ghp_")
    repo.write("app.py", f'TOKEN = "{key}"\n')
    repo.git("add", "app.py")
    blocked = pre_commit("run")
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "app.py:1:10  leaked_provider_key" in blocked.stdout
    assert key[:8] + "…" + key[-4:] in blocked.stdout and key not in blocked.stdout

    # Installed as the git hook, it stops the commit itself.
    assert pre_commit("install").returncode == 0
    commit = subprocess.run(["git", "commit", "-m", "add token"], cwd=repo.root, env=env,
                            capture_output=True, text=True, check=False)
    assert commit.returncode != 0 and "leaked_provider_key" in commit.stdout + commit.stderr

    repo.write("app.py", 'import os\nTOKEN = os.environ["TOKEN"]\n')
    repo.git("add", "app.py")
    assert pre_commit("run").returncode == 0
    ok = subprocess.run(["git", "commit", "-m", "read the token"], cwd=repo.root, env=env,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    repo.write(".env", "DEBUG=1\n")
    repo.git("add", ".env")
    env_file = pre_commit("run")
    assert env_file.returncode == 1 and ".env  env_file_tracked" in env_file.stdout
    pre_commit("gc")  # environments of configurations that are gone (older runs' revs)
