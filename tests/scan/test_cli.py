"""``keyturn scan`` as users run it: exit codes, formats, baselines and usage errors."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from keyturn.cli import main
from keyturn.keys import generate_key
from tests.scan import keygen
from tests.scan.repo import Repo

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())


def scan(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Through Click, in this process: fast, and what the real entry point calls."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["scan", "--jobs", "1", *args])
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def keyturn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command, as a separate process."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "keyturn", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Repo, list[str]]:
    repo = Repo(tmp_path / "p")
    keys = [keygen.github_checksummed("ghp_"), generate_key("acme_live")]
    repo.write("src/app.py", f'import os\nTOKEN = "{keys[0]}"\n')
    repo.write("config/prod.yaml", f"service:\n  api_key: {keys[1]}\n")
    repo.write("README.md", "Set `API_KEY=your-api-key-here` in your environment.\n")
    repo.commit("init")
    return repo, keys


def _no_secret_in(text: str, keys: list[str]) -> None:
    for key in keys:
        tail = key[-30:]  # the random part: any 12 characters of it would be too many
        assert not any(tail[i : i + 12] in text for i in range(len(tail) - 11)), key[:8]


def test_text_output_and_exit_1_on_findings(project) -> None:
    repo, keys = project
    code, out, err = scan(cwd=repo.root)
    assert code == 1, err
    assert "src/app.py:2:10  leaked_provider_key" in out
    assert "config/prod.yaml:2:12  leaked_keyturn_key" in out
    assert "GitHub personal access token (classic), checksum valid" in out
    assert "fix: revoke or rotate" in out
    assert re.search(r"2 findings \(2 errors, 0 warnings\) in 3 files", out)
    _no_secret_in(out + err, keys)


def test_clean_tree_exits_0(tmp_path: Path) -> None:
    Repo(tmp_path).write("a.py", "print('hello')\n")
    code, out, _ = scan(cwd=tmp_path)
    assert code == 0 and out.startswith("no new secrets in 1 file")


def test_json_output(project) -> None:
    repo, keys = project
    code, out, _ = scan("--format", "json", cwd=repo.root)
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["mode"] == "paths"
    assert [(f["path"], f["line"], f["code"]) for f in data["findings"]] == [
        ("config/prod.yaml", 2, "leaked_keyturn_key"),
        ("src/app.py", 2, "leaked_provider_key"),
    ]
    first = data["findings"][1]
    assert first["provider_id"] == "github" and first["confidence"] == "certain"
    assert first["masked"] == keys[0][:8] + "…" + keys[0][-4:]
    assert set(first) >= {"severity", "title", "fix", "fingerprint", "column", "commits"}
    _no_secret_in(out, keys)


def test_sarif_output_validates_against_the_official_schema(project) -> None:
    repo, keys = project
    repo.write(".env", "X=1\n")  # a result without a region
    code, out, _ = scan("--format", "sarif", cwd=repo.root)
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert code == 1 and log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert {"leaked_keyturn_key", "leaked_provider_key", "possible_secret",
            "env_file_tracked", "env_file_not_ignored"} <= set(rules)
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"leaked_keyturn_key", "leaked_provider_key", "env_file_not_ignored"}
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["partialFingerprints"]["keyturnSecret/v1"]
    region = results["leaked_provider_key"]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 10}
    _no_secret_in(out, keys)


def test_a_baseline_accepts_known_findings_even_when_they_move(project) -> None:
    repo, keys = project
    code, _, err = scan("--update-baseline", ".keyturn-baseline.json", cwd=repo.root)
    assert code == 0 and "wrote 2 fingerprints" in err
    text = (repo.root / ".keyturn-baseline.json").read_text()
    _no_secret_in(text, keys)
    baseline = json.loads(text)
    assert baseline["keyturn_baseline"] == 1 and len(baseline["salt"]) == 32
    assert scan("--baseline", ".keyturn-baseline.json", cwd=repo.root)[0] == 0
    # the key moves down and to another file: still the same finding
    repo.write("src/app.py", "\n\n\nimport os\n")
    repo.write("src/other.py", f"# moved\n\nT = '{keys[0]}'\n")
    code, out, _ = scan("--baseline", ".keyturn-baseline.json", cwd=repo.root)
    assert code == 0 and "2 known from the baseline" in out
    new = keygen.github_checksummed("ghs_")
    repo.write("src/more.py", f"T = '{new}'\n")
    code, out, _ = scan("--baseline", ".keyturn-baseline.json", "--format", "json",
                        cwd=repo.root)
    data = json.loads(out)
    assert code == 1 and data["baselined"] == 2
    assert [f["path"] for f in data["findings"]] == ["src/more.py"]
    # updating keeps the salt, so fingerprints already recorded stay valid
    scan("--update-baseline", ".keyturn-baseline.json", cwd=repo.root)
    again = json.loads((repo.root / ".keyturn-baseline.json").read_text())
    assert again["salt"] == baseline["salt"]
    assert {f["fingerprint"] for f in baseline["findings"]} < {
        f["fingerprint"] for f in again["findings"]
    }


def test_sarif_marks_baselined_results_unchanged(project) -> None:
    repo, _ = project
    scan("--update-baseline", "b.json", cwd=repo.root)
    repo.write("new.py", f"K = '{generate_key()}'\n")
    code, out, _ = scan("--baseline", "b.json", "--format", "sarif", cwd=repo.root)
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    states = sorted(r["baselineState"] for r in log["runs"][0]["results"])
    assert code == 1 and states == ["new", "unchanged", "unchanged"]


def test_staged_and_history_through_the_command(project) -> None:
    repo, _ = project
    repo.write("src/app.py", "import os\nTOKEN = os.environ['TOKEN']\n")
    repo.write("config/prod.yaml", "service:\n  api_key: ${API_KEY}\n")
    repo.commit("rotate")
    assert scan(cwd=repo.root)[0] == 0
    assert scan("--staged", cwd=repo.root)[0] == 0
    code, out, _ = scan("--history", "--format", "json", cwd=repo.root)
    assert code == 1 and {f["path"] for f in json.loads(out)["findings"]} == {
        "src/app.py", "config/prod.yaml",
    }
    repo.write("late.py", f"K = '{generate_key()}'\n")
    repo.git("add", "late.py")
    code, out, _ = scan("--staged", cwd=repo.root)
    assert code == 1 and "late.py:1:6" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--staged", "--history"], "error: use --staged or --history, not both"),
        (["--since", "HEAD"], "error: --since only applies to --history"),
        (["missing-dir"], "error: missing-dir does not exist"),
        (["--baseline", "nope.json"], "error: baseline nope.json does not exist"),
        (["--max-size", "lots"], "error: --max-size 'lots' is not a size"),
        (["--history", "--since", "no-such-rev"], "error: git: "),
        # Said before scanning; it was exit 3, "the scan failed ... Please report this."
        (["--update-baseline", "missing-dir/b.json"],
         "error: cannot write baseline 'missing-dir/b.json': its folder does not exist"),
    ],
)
def test_bad_usage_is_one_error_line_and_exit_2(project, args, message) -> None:
    repo, _ = project
    code, out, err = scan(*args, cwd=repo.root)
    assert code == 2, out
    assert err.startswith(message) and err.count("\n") == 1


def test_a_bad_baseline_file_is_a_usage_error(project) -> None:
    repo, _ = project
    repo.write("b.json", '{"hello": 1}')
    code, _, err = scan("--baseline", "b.json", cwd=repo.root)
    assert code == 2 and "is not a keyturn baseline" in err


def test_history_needs_a_repository(tmp_path: Path) -> None:
    code, _, err = scan("--history", cwd=tmp_path)
    assert code == 2 and "needs a git repository" in err


def test_the_real_command_exit_codes_and_one_line_errors(project) -> None:
    repo, keys = project
    done = keyturn("scan", cwd=repo.root)
    assert done.returncode == 1 and "leaked_provider_key" in done.stdout
    assert "\x1b[" not in done.stdout  # no colour when piped
    _no_secret_in(done.stdout + done.stderr, keys)
    bad = keyturn("scan", "--format", "xml", cwd=repo.root)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
    assert "Traceback" not in bad.stderr
    assert keyturn("scan", "--help", cwd=repo.root).returncode == 0


def test_ctrl_c_stops_a_parallel_scan_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: each worker printed its own
    KeyboardInterrupt traceback before the scan said "Aborted."."""
    repo = Repo(tmp_path / "p")
    line = "the quick brown fox jumps over the lazy dog while nobody is watching it\n"
    for n in range(40):  # 40 MB: well above the size that starts worker processes
        repo.write(f"notes-{n}.txt", f"{n}\n" + line * 14_000)
    repo.commit("notes")
    # --history: the workers receive the blobs themselves, so they are often between two,
    # waiting on their queue, where Python printed the interrupt's traceback.
    # A worker may first wait only once the last blobs are scanned: an interrupt landing
    # after the work is done proves nothing (exit 0, no findings), so the scan runs again;
    # a scan that ignored Ctrl-C altogether would end so every time.
    for _ in range(3):
        scan_process = subprocess.Popen(
            [sys.executable, "-m", "keyturn", "scan", "--history", "--jobs", "2"],
            cwd=repo.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True, preexec_fn=_interruptible,
        )
        while scan_process.poll() is None and not _a_worker_waits(scan_process.pid):
            time.sleep(0.002)
        with contextlib.suppress(ProcessLookupError):  # the scan may have ended already
            os.killpg(scan_process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, err = scan_process.communicate(timeout=120)
        if scan_process.returncode != 0:
            break
    assert scan_process.returncode == 130, err
    assert "Traceback" not in err and err.strip().endswith("Aborted.")


def _interruptible() -> None:
    """In the child, before the scan starts: Ctrl-C as a terminal's foreground job has it.
    A test run started in the background (``make test &``, CI runners) ignores SIGINT, and
    a process that starts with it ignored keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _a_worker_waits(pid: int) -> bool:
    """Whether ``pid``'s two worker processes have both scanned (a tenth of a second of CPU
    each) and one of them now sleeps: waits on its queue for the next blobs, where Python
    printed an interrupt's traceback."""
    states, ticks = [], []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):  # the scan has ended meanwhile
        return False
    for child in children:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # gone between listing and reading
            continue
        states.append(fields[0])
        ticks.append(int(fields[11]) + int(fields[12]))  # utime + stime
    busy = len(ticks) >= 2 and min(ticks) >= os.sysconf("SC_CLK_TCK") // 10
    return busy and "S" in states
