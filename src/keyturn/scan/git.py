"""The little of git the scanner needs, through git's own plumbing commands.

Every call runs ``git`` as a subprocess with NUL-separated output, so any path survives.
Blobs are read through one long-running ``git cat-file --batch``: a history of ten thousand
blobs costs one process, not ten thousand.

A scanned repository is untrusted: its ``.git/config`` can name programs for git to run
(``core.fsmonitor`` on every index read, ``gpg.program`` under ``log.showSignature``, a
promisor remote's transport on a missing object, diff drivers, pagers, hooks). Every call
goes through :func:`command`, which overrides each program-running setting on git's command
line (the highest-precedence configuration) and in the environment, so a scan of a hostile
clone executes nothing but git itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_SKIP_MODES = (b"160000", b"120000")  # submodules and symbolic links hold no content here


class GitError(RuntimeError):
    """git is missing, or the directory is not a repository, or a revision is unknown."""


def _git() -> str:
    found = shutil.which("git")
    if found is None:
        raise GitError("git is not installed (or not on PATH)")
    return found


# Settings a repository's own config could use to make git run a program, each pinned to
# a value that runs none. Command-line ``-c`` beats every config file, includes too.
NEUTRAL_CONFIG = (
    "core.fsmonitor=false",  # a hook program run on index reads (ls-files, diff --cached)
    "core.hooksPath=/dev/null",  # no hook, should a read command ever look for one
    "core.pager=cat",
    "core.sshCommand=false",
    "core.askPass=",
    "core.alternateRefsCommand=",
    "credential.helper=",  # an empty value clears the list of helpers
    "diff.external=",
    "log.showSignature=false",  # else `git log` runs gpg.program on signed commits
    "gpg.program=false",
    "gpg.openpgp.program=false",
    "gpg.x509.program=false",
    "gpg.ssh.program=false",
    "protocol.allow=never",  # no transport (a partial clone would fetch missing objects)
    "gc.auto=0",
    "maintenance.auto=false",
)
# The same through the environment, for what has no config key.
NEUTRAL_ENV = {
    "GIT_NO_LAZY_FETCH": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",  # a read-only scan does not rewrite the index
    "GIT_PAGER": "cat",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
}
_UNSET_ENV = ("GIT_EXTERNAL_DIFF", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND")


def command(*args: str) -> list[str]:
    """``git`` with every program-running setting neutralised, then ``args``."""
    pinned = [part for setting in NEUTRAL_CONFIG for part in ("-c", setting)]
    return [_git(), *pinned, *args]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET_ENV}
    return {**env, **NEUTRAL_ENV}


def run(cwd: Path, *args: str, stdin: bytes | None = None, ok: Sequence[int] = (0,)) -> bytes:
    # Fixed git subcommands; paths and revisions go in as single arguments, never to a shell.
    done = subprocess.run(  # noqa: S603
        command(*args), cwd=cwd, input=stdin, capture_output=True, check=False,
        env=environment(),
    )
    if done.returncode not in ok:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {args[0]} failed")
    return done.stdout


def work_tree_root(path: Path) -> Path | None:
    """The top of the work tree holding ``path``, or ``None`` outside any repository."""
    where = path if path.is_dir() else path.parent
    try:
        out = run(where, "rev-parse", "--show-toplevel")
    except GitError:
        return None
    return Path(out.decode().strip()) if out.strip() else None


def _z(out: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def listed_files(directory: Path) -> list[str]:
    """Tracked files and untracked ones no ignore rule covers, relative to ``directory``."""
    return _z(run(directory, "ls-files", "-z", "--cached", "--others", "--exclude-standard"))


def tracked(directory: Path, paths: Sequence[str] = ()) -> set[str]:
    """Which of ``paths`` (or all files, relative to ``directory``) the index holds."""
    return set(_z(run(directory, "ls-files", "-z", "--cached", "--", *paths)))


def ignored(directory: Path, paths: Iterable[str]) -> set[str]:
    """Which of ``paths`` a ``.gitignore`` rule (or info/exclude, core.excludesFile) covers."""
    listing = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
    if not listing:
        return set()
    # exit 1: none is ignored
    return set(_z(run(directory, "check-ignore", "-z", "--stdin", stdin=listing, ok=(0, 1))))


@dataclass(frozen=True, slots=True)
class StagedFile:
    path: str  # relative to the work tree's top
    blob: str


def staged(root: Path) -> list[StagedFile]:
    """Files whose staged content differs from HEAD (every index entry before a first commit)."""
    has_head = bool(run(root, "rev-parse", "--verify", "-q", "HEAD", ok=(0, 1)).strip())
    if not has_head:
        entries = []
        for record in run(root, "ls-files", "-z", "--stage").split(b"\0"):
            if record:
                meta, _, path = record.partition(b"\t")
                mode, blob, _stage = meta.split()
                if mode not in _SKIP_MODES:
                    entries.append(StagedFile(path.decode("utf-8", "surrogateescape"),
                                              blob.decode()))
        return entries
    out = run(root, "diff", "--cached", "--raw", "-z", "--no-abbrev", "--no-renames",
              "--no-ext-diff", "--no-textconv", "--diff-filter=ACMRT")
    tokens = out.split(b"\0")
    found = []
    for meta, path in zip(tokens[::2], tokens[1::2], strict=False):
        fields = meta.lstrip(b":").split()
        if len(fields) >= 4 and fields[1] not in _SKIP_MODES:
            found.append(StagedFile(path.decode("utf-8", "surrogateescape"), fields[3].decode()))
    return found


def blob_sizes(root: Path, objects: Iterable[str]) -> Iterator[tuple[str, int]]:
    """(id, size) of each of ``objects`` that is a blob, from git's object headers alone:
    what is too large is known before a byte of it is read."""
    listing = "".join(f"{object_id}\n" for object_id in objects).encode()
    if not listing:
        return
    check = run(root, "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                stdin=listing)
    for line in check.decode().splitlines():
        sha, kind, *size = line.split()
        if kind == "blob" and size:
            yield sha, int(size[0])


@dataclass(slots=True)
class HistoryBlob:
    """A blob of the history and where it was introduced: (commit, path), oldest first."""

    blob: str
    size: int
    path: str
    introduced: list[tuple[str, str]] = field(default_factory=list)


def history(root: Path, since: str | None = None) -> list[HistoryBlob]:
    """Every blob reachable from any ref (or added after ``since``), once per blob id."""
    scope = ["--all"] + ([f"^{since}"] if since else [])
    if since:
        run(root, "rev-parse", "--verify", "-q", "--end-of-options", f"{since}^{{commit}}")
    names: dict[str, str] = {}
    for record in run(root, "rev-list", "--objects", *scope).splitlines():
        object_id, _, name = record.partition(b" ")
        names[object_id.decode()] = name.decode("utf-8", "surrogateescape")
    blobs = {
        sha: HistoryBlob(sha, size, names.get(sha, "")) for sha, size in blob_sizes(root, names)
    }
    _attribute(root, scope, blobs)
    return list(blobs.values())


def _attribute(root: Path, scope: list[str], blobs: dict[str, HistoryBlob]) -> None:
    """Fill in which commits introduced each blob, from ``git log --raw`` (merges too)."""
    out = run(root, "log", *scope, "-c", "--raw", "-z", "--no-abbrev", "--no-renames",
              "--no-ext-diff", "--no-textconv", "--no-show-signature",
              "--format=%x00commit %H")
    commit, meta = "", b""
    for token in out.split(b"\0"):
        if meta:  # the path that follows a raw entry (a file may be named "commit x")
            parents = len(meta) - len(meta.lstrip(b":"))
            fields = meta.lstrip(b":").split()
            entry = blobs.get(fields[2 * (parents + 1) - 1].decode())
            if entry is not None:
                entry.introduced.insert(0, (commit, token.decode("utf-8", "surrogateescape")))
            meta = b""
        elif token.startswith(b"commit "):
            commit = token[7:].decode()
        elif token.lstrip(b"\n").startswith(b":"):
            meta = token.lstrip(b"\n")


def read_blobs(root: Path, blobs: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(blob id, content) through one ``git cat-file --batch``, one blob at a time."""
    proc = subprocess.Popen(  # noqa: S603 - a fixed command line
        command("cat-file", "--batch"), cwd=root, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for sha in blobs:
            proc.stdin.write(sha.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) < 3:  # "<sha> missing"
                continue
            size = int(header[2])
            content = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            yield sha, content
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()
