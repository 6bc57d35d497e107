"""Which files to read: what git would commit, minus binaries, huge files and vendored trees.

In a git work tree the scanner reads what ``git ls-files --cached --others
--exclude-standard`` lists: tracked files and untracked ones no ignore rule covers, i.e.
what could land in a commit. An ignored ``.env`` holds real keys by design and is not read.
Outside git, a directory is walked, skipping version-control, dependency and cache folders.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from keyturn.scan import git

SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", "node_modules", "bower_components", "__pycache__", ".venv",
        "venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
        ".eggs", ".gradle", ".terraform",
    }
)
BINARY_SUFFIXES = frozenset(
    [
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tif", ".tiff", ".psd",
        ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jar",
        ".war", ".whl", ".egg", ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".lib",
        ".pyc", ".pyo", ".class", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3",
        ".mp4", ".m4a", ".wav", ".ogg", ".flac", ".mov", ".avi", ".mkv", ".webm",
        ".sqlite", ".sqlite3", ".db", ".bin", ".npy", ".npz", ".pkl", ".pickle",
        ".parquet", ".feather", ".onnx", ".pt", ".h5"
    ]
)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to scan: a file on disk, or content read from git (a blob)."""

    path: str  # as reported
    file: str = ""  # read from here when ``content`` is None
    content: bytes | None = None
    commits: tuple[str, ...] = ()
    error: str = ""  # could not be listed or read: reported, never silently dropped


# Paths are strings here, not pathlib objects: a tree of 10,000 files would otherwise spend
# more time building Paths than the scanner spends reading them.
def skipped_by_name(path: str, excludes: Sequence[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if 0 < dot < len(name) - 1 and name[dot:].lower() in BINARY_SUFFIXES:
        return True
    return any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(name, g) for g in excludes)


def _is_venv(folder: Path) -> bool:
    """A virtual environment (not source); a folder that cannot be entered is not one, so
    the walk goes on to report it."""
    try:
        return (folder / "pyvenv.cfg").is_file()
    except PermissionError:
        return False


def _walk(directory: str) -> Iterator[str | Item]:
    """Files under ``directory``, each folder's files before its sub-folders, by name; a
    folder that cannot be listed is an ``Item`` with an error.

    Symbolic links are not followed (git stores a link, not what it points to). One
    ``scandir`` per folder tells links and folders apart without a call per file.
    """
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        yield Item(str(error.filename or directory), error=error.strerror or str(error))
        return
    folders = []
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name not in SKIP_DIRS and not _is_venv(Path(entry.path)):
                folders.append(entry.path)
        else:
            yield entry.path
    for folder in folders:
        yield from _walk(folder)


def files_under(target: str) -> Iterator[str | Item]:
    """The files to read for one PATH argument, as paths joined onto ``target``."""
    base = Path(target)
    if not base.is_dir():
        yield str(base)  # named explicitly: read even if git ignores it
        return
    root = git.work_tree_root(base)
    if root is None or git.ignored(root, [str(base.resolve().relative_to(root))]):
        yield from _walk(str(base))  # no git, or a folder git ignores, named explicitly
        return
    for rel in git.listed_files(base):
        path = base / rel
        try:
            regular = stat.S_ISREG(path.lstat().st_mode)  # not a link, folder or submodule
        except OSError:
            continue  # listed by git, deleted since
        if regular:
            yield str(path)


def items_for(targets: Sequence[str], excludes: Sequence[str]) -> Iterator[Item]:
    seen: set[str] = set()
    for target in targets:
        for path in files_under(target):
            if isinstance(path, Item):
                yield path
                continue
            shown = path.replace(os.sep, "/")
            shown = shown[2:] if shown.startswith("./") else shown  # as pathlib joins onto "."
            if shown not in seen and not skipped_by_name(shown, excludes):
                seen.add(shown)
                yield Item(shown, file=path)
