"""A hostile tree or repository: the scanner runs nothing, hangs on nothing, hides nothing.

Each test builds what an attacker (or an unlucky user) could put in a repository, real
files and real git, and runs the scanner through its public faces: the command, as a
separate process where the behaviour involves processes, and the pre-commit hook's entry.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from keyturn.scan import Options, scan_history, scan_paths, scan_staged
from keyturn.scan.detect import scan_bytes
from tests.scan import keygen
from tests.scan.repo import GIT_ENV, Repo

PROJECT = Path(__file__).resolve().parents[2]
OPTIONS = Options(jobs=1)


def keyturn(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "keyturn", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout, check=False)


def _key() -> str:
    return keygen.github_checksummed("ghp_")


def _spy(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A program that leaves a mark when run: what a hostile config would point git at."""
    mark = tmp_path / f"{name}.ran"
    program = tmp_path / f"{name}.sh"
    program.write_text(f"#!/bin/sh\necho ran >> '{mark}'\nexit 0\n")
    program.chmod(0o755)
    return program, mark


# -- 13: a hostile repository's config runs nothing ------------------------------------


def test_core_fsmonitor_of_the_scanned_repository_never_runs(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "clone")
    repo.write("app.py", f'TOKEN = "{_key()}"\n')
    repo.commit("app")
    program, mark = _spy(tmp_path, "fsmonitor")
    repo.git("config", "core.fsmonitor", str(program))
    repo.write("staged.py", f'TOKEN = "{_key()}"\n')
    repo.git("add", "staged.py")
    mark.unlink(missing_ok=True)
    subprocess.run(["git", "ls-files"], cwd=repo.root, capture_output=True, check=True)
    assert mark.exists(), "plain git runs the fsmonitor hook: the test's spy works"
    mark.unlink()

    assert keyturn("scan", cwd=repo.root).returncode == 1
    assert keyturn("scan", "--staged", cwd=repo.root).returncode == 1
    assert keyturn("scan", "--history", cwd=repo.root).returncode == 1
    assert keyturn("scan", str(repo.root / "app.py"), cwd=tmp_path).returncode == 1
    assert not mark.exists()


def _sign_head(repo: Repo) -> None:
    """Give HEAD a (bogus) signature header: `git log` asks gpg.program to check it."""
    body = repo.git("cat-file", "commit", "HEAD")
    head, _, message = body.partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEz\n -----END PGP SIGNATURE-----"
    signed = f"{head}\n{signature}\n\n{message}"
    done = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"],
                          cwd=repo.root, input=signed, capture_output=True, text=True,
                          check=True)
    repo.git("update-ref", "refs/heads/main", done.stdout.strip())


def test_gpg_program_of_the_scanned_repository_never_runs(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "clone")
    repo.write("app.py", f'TOKEN = "{_key()}"\n')
    repo.commit("app")
    _sign_head(repo)
    program, mark = _spy(tmp_path, "gpg")
    for key in ("gpg.program", "gpg.openpgp.program"):
        repo.git("config", key, str(program))
    repo.git("config", "log.showSignature", "true")
    subprocess.run(["git", "log", "-1"], cwd=repo.root, capture_output=True, check=False)
    assert mark.exists(), "plain git log runs gpg.program: the test's spy works"
    mark.unlink()

    done = keyturn("scan", "--history", "--format", "json", cwd=repo.root)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["findings"][0]["path"] == "app.py"
    assert not mark.exists()


# -- 14: file names are never options --------------------------------------------------


def test_the_pre_commit_hook_reads_every_file_name_as_a_file(tmp_path: Path) -> None:
    hook = yaml.safe_load((PROJECT / ".pre-commit-hooks.yaml").read_text())[0]
    entry = shlex.split(hook["entry"])
    assert entry[:2] == ["keyturn", "scan"]
    repo = Repo(tmp_path / "repo")
    names = ["--exclude=*", "--update-baseline=x.json", "-j", "app.py"]
    for name in names[:-1]:
        repo.write(name, "nothing to see\n")
    repo.write("app.py", f'TOKEN = "{_key()}"\n')
    repo.git("add", "--", *names)
    # pre-commit runs the entry with the staged file names appended, in any order.
    done = keyturn(*entry[1:], *names, cwd=repo.root)
    assert done.returncode == 1, done.stderr
    assert b"app.py:1:10  leaked_provider_key" in done.stdout
    assert b"4 files" in done.stdout and not (repo.root / "x.json").exists()


def test_a_since_revision_is_never_an_option(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("a.txt", "x\n")
    repo.commit("a")
    done = keyturn("scan", "--history", "--since", "--output=oops", cwd=repo.root)
    assert done.returncode == 2 and b"error:" in done.stderr
    assert not (repo.root / "oops").exists()


# -- 15: every format handles every path -----------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_a_file_name_that_is_not_utf8_is_reported_in_every_format(
    tmp_path: Path, fmt: str
) -> None:
    key = _key()
    (tmp_path / "tree").mkdir()
    name = os.fsencode(tmp_path / "tree") + b"/k\xff\xfe.py"
    with open(name, "wb") as handle:
        handle.write(f'TOKEN = "{key}"\n'.encode())
    done = keyturn("scan", "--format", fmt, cwd=tmp_path / "tree")
    assert done.returncode == 1, done.stderr
    assert key.encode() not in done.stdout
    if fmt == "sarif":
        (result,) = json.loads(done.stdout)["runs"][0]["results"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri == "k%FF%FE.py"
    elif fmt == "json":
        (finding,) = json.loads(done.stdout)["findings"]
        assert os.fsencode(finding["path"]) == b"k\xff\xfe.py"
    else:
        assert b"k\\xff\\xfe.py:1:10  leaked_provider_key" in done.stdout


def test_a_crash_exits_3_not_1(tmp_path: Path) -> None:
    # A path argument the file system refuses outright (an embedded NUL) is a usage error
    # today; a failure inside the scan must never look like "secrets found" (1) or clean (0).
    done = keyturn("scan", "--max-size", "1k", cwd=tmp_path)
    assert done.returncode == 0
    code = (
        "import sys\n"
        "from keyturn.scan import detect\n"
        "def boom(*a, **k): raise MemoryError('simulated')\n"
        "detect.find_hits = boom\n"
        "from keyturn.cli import main\n"
        "sys.argv = ['keyturn', 'scan', '--format', 'sarif', '--jobs', '1']\n"
        "main()\n"
    )
    (tmp_path / "a.py").write_text(f'TOKEN = "{_key()}"\n')
    done_crash = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                                capture_output=True, check=False, timeout=120)
    assert done_crash.returncode == 3, done_crash.stderr
    assert done_crash.stdout == b"" and b"error: the scan failed" in done_crash.stderr


# -- 16: special files are skipped, unreadable ones reported ---------------------------


def test_a_fifo_in_the_tree_or_named_is_skipped_not_waited_on(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "pipe.txt")
    (tree / "app.py").write_text(f'TOKEN = "{_key()}"\n')
    for args in (("scan", "--format", "json"), ("scan", "--format", "json", "pipe.txt",
                                                "app.py")):
        done = keyturn(*args, cwd=tree, timeout=60)
        out = json.loads(done.stdout)
        assert done.returncode == 1 and len(out["findings"]) == 1
        assert out["skipped"]["special"] == 1 and out["files"] == 1
    repo = Repo(tmp_path / "repo")
    os.mkfifo(repo.root / "pipe.txt")
    repo.write("app.py", "print('clean')\n")
    done = keyturn("scan", "pipe.txt", ".", cwd=repo.root, timeout=60)
    assert done.returncode == 0 and b"1 special" in done.stdout


def test_a_file_that_cannot_be_read_fails_the_scan_by_name(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    # /proc/self/mem is a regular file that refuses to be read at offset 0 (EIO), even
    # for root, who reads files of any mode.
    done = keyturn("scan", "--format", "json", "ok.py", "/proc/self/mem", cwd=tmp_path)
    out = json.loads(done.stdout)
    assert done.returncode == 1 and out["ok"] is False and out["findings"] == []
    assert out["unreadable"][0]["path"] == "/proc/self/mem"
    assert out["skipped"]["unreadable"] == 1
    text = keyturn("scan", "ok.py", "/proc/self/mem", cwd=tmp_path)
    assert text.returncode == 1
    assert b"/proc/self/mem  could not be read" in text.stderr
    assert b"1 file could not be read" in text.stdout


# Root reads a folder of any mode: as root, the scan runs without the capabilities that
# bypass file modes, as an ordinary user runs it.
AS_A_USER = (["setpriv", "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else [])


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path: Path) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.py").write_text("x = 1\n")
    (tmp_path / "locked").chmod(0)
    try:
        done = subprocess.run(
            [*AS_A_USER, sys.executable, "-m", "keyturn", "scan", "--format", "json", "."],
            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
            capture_output=True, timeout=120, check=False)
    finally:
        (tmp_path / "locked").chmod(stat.S_IRWXU)
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is False
    assert [entry["path"] for entry in out["unreadable"]] == ["./locked"]


# -- 17: linear in the number of keys; --max-size before reading -----------------------


def _packed(count: int, separator: str) -> bytes:
    keys = [_key() for _ in range(200)]
    return separator.join(keys[i % 200] for i in range(count)).encode()


def _cpu_to_scan(data: bytes) -> float:
    """CPU seconds of this process to scan ``data`` (the least of two runs): a busy
    machine slows the wall clock, not the work a scan does."""
    spent = []
    for _ in range(2):
        started = time.process_time()
        findings = scan_bytes(data, "packed.txt")
        spent.append(time.process_time() - started)
    assert len(findings) == data.count(b"ghp_")
    return min(spent)


@pytest.mark.parametrize("separator", [" ", "\n"], ids=["one line", "many lines"])
def test_a_file_packed_with_keys_is_scanned_in_linear_time(separator: str) -> None:
    # Four times the keys must cost about four times the work, not sixteen: the ratio of
    # two sizes measured in the same test, so a loaded machine slows both alike.
    small, large = _cpu_to_scan(_packed(5_000, separator)), _cpu_to_scan(
        _packed(20_000, separator))
    assert large / max(small, 1e-3) < 8, (small, large)


def test_every_key_of_a_packed_file_is_reported_on_its_line(tmp_path: Path) -> None:
    one_line = _packed(5_000, " ").decode()
    (tmp_path / "one_line.txt").write_text(one_line)
    (tmp_path / "lines.txt").write_text(one_line.replace(" ", "\n"))
    out = json.loads(keyturn("scan", "--format", "json", cwd=tmp_path).stdout)
    assert len(out["findings"]) == 10_000
    assert {f["line"] for f in out["findings"] if f["path"] == "lines.txt"} == set(
        range(1, 5_001))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_staged_blobs_over_max_size_are_never_read(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    with (repo.root / "big.txt").open("w") as big:
        for _ in range(150):
            big.write("a" * 1_000_000)
    repo.write("small.py", f'TOKEN = "{_key()}"\n')
    repo.git("add", "big.txt", "small.py")
    (repo.root / "big.txt").unlink()
    # The peak of this process's own memory since exec (getrusage would count the parent's).
    code = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from keyturn.cli import main\n"
        "sys.argv = ['keyturn', 'scan', '--staged', '--format', 'json', '--jobs', '1']\n"
        "try:\n    main()\n"
        "finally:\n"
        "    status = Path('/proc/self/status').read_text()\n"
        "    print(re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=repo.root, capture_output=True,
                          check=False, timeout=120, env={**os.environ, **GIT_ENV})
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["skipped"]["too_large"] == 1
    peak_kb = int(done.stderr.split()[-1])
    assert peak_kb < 120_000, f"{peak_kb} kB: the 150 MB blob was read"


# -- 18: lines end where a reader sees them end; text in any Unicode encoding -----------


def test_keyturn_allow_covers_only_its_own_line_in_cr_terminated_files(tmp_path: Path) -> None:
    allowed, leaked = _key(), _key()
    text = f'a = "{allowed}"  # keyturn: allow\rb = "{leaked}"\r'
    for ending in ("\r", "\r\n"):
        (tmp_path / "mac.py").write_bytes(text.replace("\r", ending).encode())
        result = scan_paths([str(tmp_path / "mac.py")], OPTIONS)
        assert [(f.line, f.column) for f in result.findings] == [(2, 6)]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_files_with_a_bom_are_scanned(tmp_path: Path, encoding: str) -> None:
    key = _key()
    data = f'# é\nTOKEN = "{key}"\n'.encode(encoding)
    if not encoding.endswith("be"):
        assert data[:2] in (b"\xff\xfe", b"\xfe\xff")  # Python writes the BOM itself
    else:
        data = ("\ufeff" + f'# é\nTOKEN = "{key}"\n').encode(encoding)
    (tmp_path / "export.txt").write_bytes(data)
    result = scan_paths([str(tmp_path / "export.txt")], OPTIONS)
    assert [(f.line, f.column, f.code) for f in result.findings] == [
        (2, 10, "leaked_provider_key")]
    assert result.binary == 0


def test_escape_sequences_in_file_names_never_reach_the_terminal(tmp_path: Path) -> None:
    name = "x\x1b[2J\x1b]0;owned\x07\u202e.py"
    (tmp_path / name).write_text(f'TOKEN = "{_key()}"\n')
    done = keyturn("scan", cwd=tmp_path)
    assert done.returncode == 1
    assert b"\x1b" not in done.stdout + done.stderr and b"\x07" not in done.stdout
    assert b"x\\x1b[2J\\x1b]0;owned\\x07\\u202e.py:1:10" in done.stdout
    missing = keyturn("scan", "nope\x1b[2J.py", cwd=tmp_path)
    assert missing.returncode == 2 and b"\x1b" not in missing.stderr


def test_history_and_staged_report_hostile_names_escaped_too(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("a\x1b[31m.py", f'TOKEN = "{_key()}"\n')
    repo.commit("a")
    for result in (scan_history(repo.root, None, OPTIONS),):
        assert [f.path for f in result.findings] == ["a\x1b[31m.py"]
    repo.write("b\x1b[31m.py", f'TOKEN = "{_key()}"\n')
    repo.git("add", ".")
    assert [f.path for f in scan_staged(repo.root, OPTIONS).findings] == ["b\x1b[31m.py"]
    done = keyturn("scan", "--history", cwd=repo.root)
    assert b"a\\x1b[31m.py:1:10" in done.stdout and b"\x1b" not in done.stdout
