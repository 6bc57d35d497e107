"""``keyturn scan --min-confidence``: the real command reports, and fails on, only findings
at least as sure as asked, in every output and in the pre-commit hook's argument form."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.scan import keygen
from tests.scan.test_cli import keyturn


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """One finding per level below certain, and one certain: low, medium, certain."""
    (tmp_path / "typed.py").write_text(f'GOOGLE_KEY = "{keygen.typed_keys()[0]}"\n')
    # A digit and a letter at the end: one url-safe draw in sixty has no digit, no key.
    (tmp_path / "conf.env").write_text(f"SERVICE_TOKEN={secrets.token_urlsafe(18)}7k\n")
    (tmp_path / "app.py").write_text(f'TOKEN = "{keygen.github_checksummed("ghp_")}"\n')
    return tmp_path


def _confidences(tree: Path, *args: str) -> tuple[int, list[str]]:
    done = keyturn("scan", "--format", "json", *args, cwd=tree)
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0)
    return done.returncode, sorted(f["confidence"] for f in report["findings"])


def test_by_default_every_level_is_reported_and_fails(tree: Path) -> None:
    assert _confidences(tree) == (1, ["certain", "low", "medium"])
    assert _confidences(tree, "--min-confidence", "low") == (1, ["certain", "low", "medium"])


@pytest.mark.parametrize(("level", "kept"), [
    ("medium", ["certain", "medium"]), ("high", ["certain"]), ("certain", ["certain"]),
])
def test_findings_below_the_threshold_are_dropped(tree: Path, level: str, kept: list[str]) -> None:
    assert _confidences(tree, "--min-confidence", level) == (1, kept)


def test_only_low_findings_pass_above_low(tree: Path) -> None:
    (tree / "app.py").unlink()
    (tree / "conf.env").unlink()
    assert _confidences(tree, "--min-confidence", "medium") == (0, [])
    text = keyturn("scan", "--min-confidence", "medium", cwd=tree)
    assert text.returncode == 0 and "no new secrets" in text.stdout


def test_the_hook_form_and_sarif(tree: Path) -> None:
    # pre-commit runs `keyturn scan [options] -- FILE...`: the option goes before the `--`.
    names = ["typed.py", "conf.env", "app.py"]
    done = keyturn("scan", "--format", "sarif", "--min-confidence", "high", "--", *names,
                   cwd=tree)
    assert done.returncode == 1
    results = json.loads(done.stdout)["runs"][0]["results"]
    assert [r["properties"]["confidence"] for r in results] == ["certain"]


def test_a_baseline_written_above_a_threshold_holds_only_what_was_reported(tree: Path) -> None:
    done = keyturn("scan", "--min-confidence", "medium", "--update-baseline", "b.json",
                   "typed.py", "conf.env", "app.py", cwd=tree)
    assert done.returncode == 0 and "wrote 2 fingerprints" in done.stderr


def test_an_unknown_level_is_a_usage_error(tree: Path) -> None:
    done = keyturn("scan", "--min-confidence", "sure", cwd=tree)
    assert done.returncode == 2 and "'certain', 'high', 'medium', 'low'" in done.stderr
