"""A secret in a file's name is a finding, and no output of ``keyturn scan`` shows it.

A file or folder named after a key (``cfg-kt_live_.../settings.txt``, a cache file named by
a token) lands in git's tree objects like content does, and every format of the scan's
report printed the name whole: the key, in a CI log, from the tool meant to keep keys out
of logs. And a clean file under that name was no finding at all, so the hook let the key
through. Now each secret in a name is a finding (line 0: about the file) and every name the
report shows has its secrets masked: paths, ``--staged`` and ``--history``, in text, JSON
and SARIF, unreadable files included."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from keyturn.keys import generate_key
from tests.doctor.conftest import github_token
from tests.scan.repo import Repo
from tests.scan.test_cli import scan as scan_cli


def assert_hidden(output: str, *keys: str) -> None:
    """No key shows beyond its mask: its prefix and 4 + 4 characters of the rest."""
    for key in keys:
        hidden = key[key.rfind("_") + 5 : -4]
        shown = [hidden[i : i + 8] for i in range(len(hidden) - 7) if hidden[i : i + 8] in output]
        assert not shown, f"pieces of {key[:12]}... in the output: {shown[:3]}"


def scan(*args: str, cwd: Path) -> tuple[int, str]:
    """The scan through Click, its two streams as one: a key must show on neither."""
    code, out, err = scan_cli(*args, cwd=cwd)
    return code, out + err


def planted(root: Path) -> tuple[str, str]:
    """A folder named with a keyturn key and a file named with a GitHub token, both holding
    nothing secret."""
    key, token = generate_key("kt_live"), github_token()
    (root / f"cfg-{key}").mkdir(parents=True)
    (root / f"cfg-{key}" / "settings.txt").write_text("debug = true\n")
    (root / f"{token}.json").write_text("{}\n")
    return key, token


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_a_tree_scan_reports_names_masked(tmp_path: Path, fmt: str) -> None:
    key, token = planted(tmp_path)
    code, output = scan("--format", fmt, ".", cwd=tmp_path)
    assert code == 1, output
    assert_hidden(output, key, token)
    if fmt == "json":
        found = json.loads(output)["findings"]
        assert {f["provider_id"] for f in found} >= {"keyturn", "github"}
        assert all(f["line"] == 0 for f in found)
        assert any(f["path"].startswith("cfg-kt_live_") for f in found)


@pytest.mark.parametrize("mode", ["--staged", "--history"])
def test_git_scans_report_names_masked(tmp_path: Path, mode: str) -> None:
    repo = Repo(tmp_path / "repo")
    key, token = planted(repo.root)
    if mode == "--history":
        repo.commit("add settings")
    else:
        repo.git("add", ".")
    code, output = scan(mode, "--format", "json", ".", cwd=repo.root)
    assert code == 1, output
    assert_hidden(output, key, token)
    assert len(json.loads(output)["findings"]) >= 2


def test_a_content_finding_under_such_a_name_is_masked_too(tmp_path: Path) -> None:
    key, token = planted(tmp_path)
    inner = generate_key("kt_live")
    (tmp_path / f"{token}.json").write_text(f'{{"key": "{inner}"}}\n')
    code, output = scan("--format", "text", ".", cwd=tmp_path)
    assert code == 1
    assert_hidden(output, key, token, inner)
    assert ":1:" in output  # the content finding, at its line


def test_ordinary_names_are_shown_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "src" / "very_long_module_name_without_dots").mkdir(parents=True)
    secret = generate_key("kt_live")
    (tmp_path / "src" / "very_long_module_name_without_dots" / "x.py").write_text(
        f'KEY = "{secret}"\n'
    )
    code, output = scan("--format", "json", ".", cwd=tmp_path)
    assert code == 1
    (found,) = json.loads(output)["findings"]
    assert found["path"] == "src/very_long_module_name_without_dots/x.py"


def test_a_folder_that_cannot_be_read_is_named_masked(tmp_path: Path) -> None:
    """Listed among the unreadable (text on stderr, JSON), its name still masked."""
    from tests.scan.test_hardening import AS_A_USER

    key = generate_key("kt_live")
    locked = tmp_path / f"cache-{key}"
    locked.mkdir()
    (locked / "a.py").write_text("x = 1\n")
    locked.chmod(0)
    try:
        outputs = [
            subprocess.run(
                [*AS_A_USER, sys.executable, "-m", "keyturn", "scan", "--format", fmt, "."],
                cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
                capture_output=True, text=True, timeout=120, check=False,
            )
            for fmt in ("text", "json")
        ]
    finally:
        locked.chmod(stat.S_IRWXU)
    for done in outputs:
        assert done.returncode == 1, done.stderr
        assert_hidden(done.stdout + done.stderr, key)
    assert json.loads(outputs[1].stdout)["unreadable"][0]["path"].startswith("./cache-kt_live_")


def test_a_name_holding_any_known_key_is_a_finding() -> None:
    """Every key shape the detectors know, in a folder's or a file's name, is a finding of
    the name check: short ones (Slack's ``xoxa-`` tokens) and word-like ones (a Stripe key
    of letters alone) too, which a "looks random" shortcut in front of the detectors lost."""
    from keyturn.scan.detect import find_hits
    from keyturn.scan.names import name_findings
    from tests.scan import keygen

    for planted in [*keygen.provider_keys(), *keygen.keyturn_keys()] * 20:
        for path in (f"cfg-{planted.key}/settings.txt", f"cache/{planted.key}.json"):
            everything = {h.provider_id for h in find_hits(path.encode())}
            found = {f.provider_id for f in name_findings(path, "salt", "low")}
            assert found == everything, planted.type_name
            assert planted.provider_id in found or planted.provider_id not in everything


def test_a_uuid_named_file_is_no_finding(tmp_path: Path) -> None:
    """The doctor masks a UUID typed where a value belongs (a Heroku API key is one), but
    files and folders named by a UUID are everywhere and are no secret: shown as they are."""
    name = "7f239c66-1f3d-448b-80c0-6e8bf0642422"
    (tmp_path / "cache" / name).mkdir(parents=True)
    (tmp_path / "cache" / name / f"{name.upper()}.json").write_text("{}\n")
    code, output = scan("--format", "json", ".", cwd=tmp_path)
    assert code == 0, output
    assert json.loads(output)["findings"] == []
