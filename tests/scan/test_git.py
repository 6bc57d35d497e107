"""Trees, the index and the history of real git repositories, and .env hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyturn.keys import generate_key, mask
from keyturn.scan import Options, scan_history, scan_paths, scan_staged
from keyturn.scan.exposure import mask_value
from tests.scan import keygen
from tests.scan.repo import Repo

OPTIONS = Options(jobs=1)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


def _keys(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {(f.path, f.masked) for f in result.findings if f.line}


def _codes(result) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return sorted((f.code, f.path) for f in result.findings)


def _mask(key: str) -> str:
    if key.startswith("kt_"):
        return mask(key)
    return mask_value(key, key[:4])  # ghp_, gho_


def test_a_tree_is_scanned_as_git_would_commit_it(repo: Repo, monkeypatch) -> None:
    tracked, untracked, ignored = (keygen.github_checksummed("ghp_") for _ in range(3))
    repo.write(".gitignore", "secrets/\n")
    repo.write("app.py", f'TOKEN = "{tracked}"\n')
    repo.commit("app")
    repo.write("new.py", f'TOKEN = "{untracked}"\n')
    repo.write("secrets/local.py", f'TOKEN = "{ignored}"\n')
    monkeypatch.chdir(repo.root)
    result = scan_paths(["."], OPTIONS)
    assert _keys(result) == {("app.py", _mask(tracked)), ("new.py", _mask(untracked))}


def test_planted_keys_in_every_shape_are_found_exactly_across_files(repo: Repo) -> None:
    planted = keygen.provider_keys() + keygen.keyturn_keys()
    for i, p in enumerate(planted):
        repo.write(f"pkg/m{i % 7}/f{i}.py", f'# {p.type_name}\nVALUE = "{p.key}"\n')
    for i, miss in enumerate(keygen.near_misses() + keygen.identifiers()):
        repo.write(f"pkg/decoys/d{i}.txt", f"api_key = '{miss}'\n")
    repo.write("pkg/image.png", "ghp_" + "\0" * 10)
    repo.commit("all")
    result = scan_paths([str(repo.root / "pkg")], OPTIONS)
    found = sorted((f.path.rsplit("/", 1)[-1], f.line) for f in result.findings)
    assert found == sorted((f"f{i}.py", 2) for i in range(len(planted)))
    assert result.files == len(planted) + len(keygen.near_misses()) + len(keygen.IDENTIFIER_TYPES)


def test_outside_git_a_directory_is_walked_skipping_vendored_folders(tmp_path: Path) -> None:
    key = generate_key()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.js").write_text(f"const k = '{key}';\n")
    for vendored in ("node_modules/lib", ".git", "venv/lib", "env"):
        (tmp_path / vendored).mkdir(parents=True)
        (tmp_path / vendored / "x.js").write_text(f"const k = '{key}';\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    result = scan_paths([str(tmp_path)], OPTIONS)
    assert [f.path for f in result.findings] == [f"{tmp_path.as_posix()}/src/a.js"]


def test_huge_and_binary_files_are_skipped_and_counted(tmp_path: Path) -> None:
    key = generate_key()
    (tmp_path / "big.txt").write_text(f"k = '{key}'\n" + "x" * 5000)
    (tmp_path / "blob.dat").write_bytes(b"\0\1\2" + key.encode())
    (tmp_path / "ok.txt").write_text(f"k = '{key}'\n")
    result = scan_paths([str(tmp_path)], Options(jobs=1, max_size=1000))
    assert [f.path.rsplit("/", 1)[-1] for f in result.findings] == ["ok.txt"]
    assert (result.too_large, result.binary, result.files) == (1, 1, 1)


def test_large_trees_are_scanned_by_several_processes_with_the_same_result(
    tmp_path: Path,
) -> None:
    planted = [generate_key() for _ in range(30)]
    filler = "def f(x):\n    return {'key': x, 'token': None}\n" * 2000
    for i, key in enumerate(planted):
        (tmp_path / f"m{i}.py").write_text(filler + f"K = '{key}'\n")
    serial = scan_paths([str(tmp_path)], Options(jobs=1))
    import keyturn.scan.scanner as scanner

    old = scanner.PARALLEL_BYTES, scanner.CHUNK_BYTES
    scanner.PARALLEL_BYTES, scanner.CHUNK_BYTES = 1_000_000, 500_000
    try:
        parallel = scan_paths([str(tmp_path)], Options(jobs=2))
    finally:
        scanner.PARALLEL_BYTES, scanner.CHUNK_BYTES = old
    key_of = sorted((f.path, f.line, f.fingerprint) for f in serial.findings)
    assert key_of == sorted((f.path, f.line, f.fingerprint) for f in parallel.findings)
    assert len(key_of) == 30 and serial.bytes == parallel.bytes


def test_staged_scans_the_index_not_the_work_tree(repo: Repo) -> None:
    staged_key, unstaged_key, committed_key = (generate_key() for _ in range(3))
    repo.write("old.py", f"K = '{committed_key}'\n")
    repo.commit("old")
    repo.write("a.py", f"K = '{staged_key}'\n")
    repo.git("add", "a.py")
    repo.write("a.py", "K = 'clean now, but the index still has the key'\n")
    repo.write("b.py", f"K = '{unstaged_key}'\n")  # never added
    result = scan_staged(repo.root, OPTIONS)
    assert [(f.path, f.code) for f in result.findings] == [("a.py", "leaked_keyturn_key")]
    assert result.findings[0].masked == _mask(staged_key)


def test_staged_before_the_first_commit(repo: Repo) -> None:
    key = keygen.github_checksummed("gho_")
    repo.write("x.cfg", f"token = {key}\n")
    repo.git("add", "x.cfg")
    assert [f.path for f in scan_staged(repo.root, OPTIONS).findings] == ["x.cfg"]


def test_history_finds_keys_removed_long_ago_once_per_blob(repo: Repo) -> None:
    gone, kept = generate_key(), keygen.github_checksummed("ghp_")
    repo.write("config.py", f"K = '{gone}'\n")
    first = repo.commit("add key")
    repo.write("copy/config.py", f"K = '{gone}'\n")  # the same blob at another path
    second = repo.commit("copy")
    repo.write("config.py", "K = os.environ['K']\n")
    repo.git("rm", "-q", "-r", "copy")
    repo.commit("remove key")
    repo.git("checkout", "-q", "-b", "side")
    repo.write("side.txt", f"token: {kept}\n")
    side = repo.commit("on a branch")
    repo.git("checkout", "-q", "main")
    assert scan_paths([str(repo.root)], OPTIONS).findings == []
    result = scan_history(repo.root, None, OPTIONS)
    by_code = {f.masked: f for f in result.findings}
    assert set(by_code) == {_mask(gone), _mask(kept)}
    assert by_code[_mask(gone)].path == "config.py"
    assert by_code[_mask(gone)].commits == (first, second)
    assert by_code[_mask(kept)].commits == (side,)
    assert len(result.findings) == 2  # the blob shared by two paths is scanned once


def test_history_since_a_revision_skips_what_came_before(repo: Repo) -> None:
    old, new = generate_key(), generate_key()
    repo.write("a.py", f"K = '{old}'\n")
    base = repo.commit("old")
    repo.write("b.py", f"K = '{new}'\n")
    repo.commit("new")
    result = scan_history(repo.root, base, OPTIONS)
    assert [f.masked for f in result.findings] == [_mask(new)]


def test_a_tracked_env_file_is_reported(repo: Repo, monkeypatch) -> None:
    repo.write(".env", "DEBUG=1\n")
    repo.write(".env.example", "API_KEY=your-api-key-here\n")
    repo.commit("env")
    monkeypatch.chdir(repo.root)
    assert _codes(scan_paths(["."], OPTIONS)) == [("env_file_tracked", ".env")]


def test_an_env_file_no_gitignore_covers_is_reported_and_an_ignored_one_is_not(
    repo: Repo, monkeypatch
) -> None:
    repo.write("svc/.env.local", "DEBUG=1\n")
    repo.write("web/.env", "DEBUG=1\n")
    repo.write(".gitignore", "web/.env\n")
    repo.commit("ignore", ".gitignore")
    monkeypatch.chdir(repo.root)
    assert _codes(scan_paths(["."], OPTIONS)) == [("env_file_not_ignored", "svc/.env.local")]
    # named explicitly, an ignored .env is read but it is not a hygiene problem
    assert _codes(scan_paths(["web/.env"], OPTIONS)) == []


def test_a_staged_env_file_and_one_in_history_are_reported(repo: Repo) -> None:
    repo.write(".env", "DEBUG=1\n")
    repo.git("add", ".env")
    assert _codes(scan_staged(repo.root, OPTIONS)) == [("env_file_tracked", ".env")]
    commit = repo.commit("oops")
    repo.git("rm", "-q", "--cached", ".env")
    repo.commit("fixed")
    (finding,) = scan_history(repo.root, None, OPTIONS).findings
    assert (finding.code, finding.path, finding.commits) == ("env_file_tracked", ".env", (commit,))
