"""Repository hygiene: ``.env`` files belong in ``.gitignore``, never in a commit.

A ``.env`` holds the real keys of one machine. Tracked, every key in it is in the history;
untracked but not ignored, it is one ``git add .`` away. Templates (``.env.example``) hold
placeholders and are meant to be committed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePath

from keyturn.outcomes import lookup
from keyturn.scan import codes, git
from keyturn.scan.exposure import DEFAULT_SALT, Exposure, fingerprint

TEMPLATE_SUFFIXES = frozenset(
    {"example", "sample", "template", "tpl", "dist", "defaults", "default", "schema", "test"}
)


def is_env_file(path: str) -> bool:
    """``.env``, ``.env.local``, ``.env.production``: not ``.env.example`` and its kin."""
    name = PurePath(path).name
    if name == ".env":
        return True
    head, _, suffix = name.partition(".env.")
    return not head and bool(suffix) and suffix.lower() not in TEMPLATE_SUFFIXES


def env_finding(
    code: str, path: str, salt: str = DEFAULT_SALT, commits: tuple[str, ...] = ()
) -> Exposure:
    fix = lookup(code).fix.replace("FILE", path)
    return Exposure(
        code, path, 0, 0, "hygiene", "repository", ".env file", "", "certain",
        fingerprint("hygiene", f"{code}:{path}", salt), fix, commits,
    )


def check_env_files(paths: Iterable[str], salt: str = DEFAULT_SALT) -> list[Exposure]:
    """Findings for the ``.env`` files among ``paths`` (paths as the scan reports them)."""
    by_root: dict[Path, dict[str, str]] = {}
    for path in paths:
        if not is_env_file(path):
            continue
        root = git.work_tree_root(Path(path).resolve())
        if root is not None:
            by_root.setdefault(root, {})[os.path.relpath(Path(path).resolve(), root)] = path
    found = []
    for root, files in by_root.items():
        in_index = git.tracked(root, list(files))
        covered = git.ignored(root, [f for f in files if f not in in_index])
        for rel, shown in sorted(files.items()):
            if rel in in_index:
                found.append(env_finding(codes.ENV_FILE_TRACKED, shown, salt))
            elif rel not in covered:
                found.append(env_finding(codes.ENV_FILE_NOT_IGNORED, shown, salt))
    return found
