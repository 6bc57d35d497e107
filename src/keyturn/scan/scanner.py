"""Run a scan: files of a tree, the staged index, or every blob of the history.

Work is cut into chunks of files (about a few megabytes each) and, for a large scan, handed
to a pool of processes: the detectors are pure Python and a process per core is how they
use a machine. A chunk returns findings only, never content or secrets. A progress bar is
drawn on stderr when it is a terminal and the scan is long.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from keyturn.scan import git
from keyturn.scan.codes import ENV_FILE_TRACKED, Confidence
from keyturn.scan.content import text_of
from keyturn.scan.detect import Verifier, scan_bytes
from keyturn.scan.exposure import DEFAULT_SALT, Exposure
from keyturn.scan.generic import config_like, notes_like
from keyturn.scan.hygiene import check_env_files, env_finding, is_env_file
from keyturn.scan.names import mask_result, name_findings
from keyturn.scan.walker import Item, items_for, skipped_by_name

if TYPE_CHECKING:  # httpx comes with --verify only: a hook's scan does not import it
    import httpx

DEFAULT_MAX_SIZE = 2_000_000
CHUNK_BYTES = 4_000_000
CHUNK_FILES = 400
PARALLEL_BYTES = 8_000_000  # below this, starting processes costs more than it saves
HISTORY_BATCH_BYTES = 128_000_000


@dataclass(frozen=True, slots=True)
class Options:
    salt: str = DEFAULT_SALT
    max_size: int = DEFAULT_MAX_SIZE
    jobs: int = 0  # 0: one per CPU
    excludes: tuple[str, ...] = ()
    progress: bool = True  # drawn only when stderr is a terminal
    # Findings less sure than this are dropped whole, before --verify or --report sees them.
    min_confidence: Confidence = "low"
    verify: bool = False  # ask each found key's provider whether it is live (online)
    # Where --verify's requests go: None for the network; tests pass a mock of the internet.
    verify_transport: httpx.BaseTransport | None = field(default=None, compare=False)
    # --report: called with each finding's provider and value (``quarantine.LeakReporter``).
    report: Callable[[str, str], None] | None = field(default=None, compare=False)


@dataclass(slots=True)
class Result:
    findings: list[Exposure] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    binary: int = 0
    too_large: int = 0
    special: int = 0  # FIFOs, sockets, devices: never opened for reading
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why not)

    def add(self, other: Result) -> None:
        self.findings += other.findings
        self.files += other.files
        self.bytes += other.bytes
        self.binary += other.binary
        self.too_large += other.too_large
        self.special += other.special
        self.unreadable += other.unreadable


class _Special(Exception):
    """Not a regular file: a FIFO would block the scan forever, a device never end."""


def _read_file(name: str, max_size: int) -> bytes:
    # O_NONBLOCK: opening a FIFO must not wait for a writer; the type is then checked on the
    # open descriptor, so a file swapped for a FIFO after a stat cannot slip through.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(name, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Special(name)
        os.set_blocking(fd, True)
        # Ask for what the file holds (one byte more tells a file that grew past the
        # limit): asking for max_size bytes would allocate 2 MB for every small file.
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(min(info.st_size, max_size) + 1)
            if info.st_size < len(data) <= max_size:  # it grew, or its size is not known
                data += handle.read(max_size + 1 - len(data))
            return data
    finally:
        os.close(fd)


def _scan_item(item: Item, salt: str, max_size: int, min_confidence: Confidence,
               result: Result, verifier: Verifier | None = None) -> None:
    if item.error:
        result.unreadable.append((item.path, item.error))
        return
    if item.content is not None:
        data = item.content
    else:
        try:
            data = _read_file(item.file, max_size)
        except _Special:
            result.special += 1
            return
        except OSError as exc:
            result.unreadable.append((item.path, exc.strerror or str(exc)))
            return
    if len(data) > max_size:
        result.too_large += 1
        return
    text = text_of(data)
    if text is None:
        result.binary += 1
        return
    result.files += 1
    result.bytes += len(data)
    found = scan_bytes(text, item.path, config_like=config_like(item.path),
                       notes=notes_like(item.path), salt=salt, verifier=verifier,
                       min_confidence=min_confidence)
    result.findings += [replace(f, commits=item.commits) for f in found] if item.commits else found


def scan_chunk(items: Sequence[Item], salt: str, max_size: int, min_confidence: Confidence,
               verifier: Verifier | None = None) -> Result:
    """Scan some items; runs in a worker process for large scans."""
    result = Result()
    for item in items:
        _scan_item(item, salt, max_size, min_confidence, result, verifier)
    return result


def _verifier(options: Options) -> Verifier | None:
    verify: Verifier | None = None
    if options.verify:
        from keyturn.scan.verify import verify_key  # the doctor and its HTTP client, on demand

        transport = options.verify_transport

        def verify(provider_id: str, secret: str) -> str | None:
            return verify_key(provider_id, secret, transport)

    report = options.report
    if report is None:
        return verify

    def reported(provider_id: str, secret: str) -> str | None:
        report(provider_id, secret)
        return verify(provider_id, secret) if verify is not None else None

    return reported


def _chunks(items: Iterable[Item], size_of: Callable[[Item], int]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    weight = 0
    for item in items:
        chunk.append(item)
        weight += size_of(item)
        if weight >= CHUNK_BYTES or len(chunk) >= CHUNK_FILES:
            yield chunk
            chunk, weight = [], 0
    if chunk:
        yield chunk


def _size(item: Item) -> int:
    if item.content is not None:
        return len(item.content)
    if item.error:
        return 0
    try:
        return Path(item.file).stat().st_size
    except OSError:
        return 0


def run(items: Sequence[Item], options: Options) -> Result:
    """Scan ``items``, in parallel when there is enough to do."""
    sizes = [_size(i) for i in items]
    total = sum(s for s in sizes if s <= options.max_size)
    weights = dict(zip(map(id, items), sizes, strict=True))
    chunks = list(_chunks(items, lambda i: weights[id(i)]))
    jobs = options.jobs or os.cpu_count() or 1
    result = Result()
    with _progress(options.progress and total > PARALLEL_BYTES, total) as advance:
        # --verify and --report go over the network, in one process: the scan is not the wait.
        online = options.verify or options.report is not None
        if jobs == 1 or total < PARALLEL_BYTES or len(chunks) == 1 or online:
            verifier = _verifier(options)
            for chunk in chunks:
                part = scan_chunk(chunk, options.salt, options.max_size,
                                  options.min_confidence, verifier)
                result.add(part)
                advance(sum(weights[id(i)] for i in chunk))
            return result
        workers = min(jobs, len(chunks))
        with ProcessPoolExecutor(max_workers=workers, initializer=_leave_interrupts) as pool:
            futures = [
                (pool.submit(scan_chunk, c, options.salt, options.max_size,
                             options.min_confidence), c)
                for c in chunks
            ]
            try:
                for future, chunk in futures:
                    result.add(future.result())
                    advance(sum(weights[id(i)] for i in chunk))
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return result


def _leave_interrupts() -> None:
    """In a worker: Ctrl-C is the parent's to handle (it stops the scan and says so); each
    worker's own KeyboardInterrupt traceback filled the terminal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _NoProgress:
    def __enter__(self) -> Callable[[int], None]:
        return lambda _n: None

    def __exit__(self, *exc: object) -> None:
        return None


class _Bar:
    """click's progress bar on stderr, advanced by the bytes each chunk scanned."""

    def __init__(self, total: int) -> None:
        import click

        self._bar = click.progressbar(length=total, label="scanning", file=sys.stderr)

    def __enter__(self) -> Callable[[int], None]:
        self._bar.__enter__()
        return self._bar.update

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)


def _progress(wanted: bool, total: int) -> _NoProgress | _Bar:
    return _Bar(total) if wanted and sys.stderr.isatty() else _NoProgress()


def scan_paths(targets: Sequence[str], options: Options) -> Result:
    """Files under ``targets`` (what git could commit, in a work tree), and ``.env`` hygiene."""
    items = list(items_for(targets, options.excludes))
    result = run(items, options)
    env_files = [i.path for i in items if is_env_file(i.path)]
    result.findings += check_env_files(env_files, options.salt)
    return _with_names(result, {i.path: () for i in items}, options)


def _with_names(result: Result, paths: dict[str, tuple[str, ...]], options: Options) -> Result:
    """``result`` with the secrets in ``paths`` (each with the commits adding it) as
    findings, and every name it shows masked (``keyturn.scan.names``)."""
    verifier = _verifier(options)
    for path, commits in paths.items():
        result.findings += name_findings(
            path, options.salt, options.min_confidence, verifier, commits
        )
    return mask_result(result)


def scan_staged(root: Path, options: Options) -> Result:
    """The staged content of every file about to be committed.

    Sizes come from git's object headers first, so a blob over ``max_size`` is counted, not
    read."""
    entries = [
        e for e in git.staged(root) if not skipped_by_name(e.path, options.excludes)
    ]
    sizes = dict(git.blob_sizes(root, {e.blob for e in entries}))
    small = {blob for blob, size in sizes.items() if size <= options.max_size}
    content = dict(git.read_blobs(root, small))
    items = [Item(e.path, content=content[e.blob]) for e in entries if e.blob in content]
    result = run(items, options)
    result.too_large += sum(1 for e in entries if e.blob in sizes and e.blob not in small)
    result.findings += [
        env_finding(ENV_FILE_TRACKED, e.path, options.salt) for e in entries
        if is_env_file(e.path)
    ]
    return _with_names(result, {e.path: () for e in entries}, options)


def _batches(items: Iterable[Item], limit: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    weight = 0
    for item in items:
        batch.append(item)
        weight += len(item.content or b"")
        if weight >= limit:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


def scan_history(root: Path, since: str | None, options: Options) -> Result:
    """Every blob of the history once, reported where (and in which commits) it was added."""
    blobs = [b for b in git.history(root, since) if not skipped_by_name(b.path, options.excludes)]
    kept = {b.blob: b for b in blobs if b.size <= options.max_size}
    result = Result(too_large=len(blobs) - len(kept))

    def items() -> Iterator[Item]:
        for sha, data in git.read_blobs(root, kept):
            blob = kept[sha]
            path = blob.introduced[0][1] if blob.introduced else blob.path
            yield Item(path or sha, content=data, commits=tuple(c for c, _ in blob.introduced))

    for batch in _batches(items(), HISTORY_BATCH_BYTES):  # the history need not fit in memory
        result.add(run(batch, options))
    named: dict[str, list[str]] = {}
    for blob in blobs:
        for commit, path in blob.introduced:
            named.setdefault(path, []).append(commit)
    added = {path: tuple(dict.fromkeys(commits)) for path, commits in sorted(named.items())}
    result.findings += [
        env_finding(ENV_FILE_TRACKED, path, options.salt, commits)
        for path, commits in added.items()
        if is_env_file(path)
    ]
    return _with_names(result, added, options)
