"""``keyturn scan``: find API keys before git does, in a tree, the index or the history."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from keyturn._extras import require
from keyturn._printable import printable
from keyturn.cli.output import UsageFailure, echo_styled, format_option, styled_output
from keyturn.errors import InvalidValue, KeyturnError
from keyturn.scan import baseline as baselines
from keyturn.scan.codes import CONFIDENCES, Confidence
from keyturn.scan.exposure import DEFAULT_SALT, Exposure
from keyturn.scan.git import GitError, work_tree_root
from keyturn.scan.quarantine import LeakReporter, checked_report_url
from keyturn.scan.report import finding_lines, summary, to_json, unreadable_lines
from keyturn.scan.sarif import to_sarif
from keyturn.scan.scanner import (
    DEFAULT_MAX_SIZE,
    Options,
    Result,
    scan_history,
    scan_paths,
    scan_staged,
)

_SIZE = re.compile(r"(?i)(\d+(?:\.\d+)?)\s*([kmg]?)b?")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise UsageFailure(f"--max-size {text!r} is not a size such as 500k or 2M")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def _repository(paths: tuple[str, ...], flag: str) -> Path:
    if len(paths) > 1:
        raise UsageFailure(f"{flag} scans one repository: name at most one PATH")
    target = Path(paths[0] if paths else ".")
    if not target.exists():
        raise UsageFailure(f"{printable(str(target))} does not exist")
    root = work_tree_root(target.resolve())
    if root is None:
        raise UsageFailure(f"{flag} needs a git repository, and {target} is not in one")
    return root


def _run(paths: tuple[str, ...], staged: bool, history: bool, since: str | None,
         options: Options) -> tuple[Result, str]:
    if staged:
        return scan_staged(_repository(paths, "--staged"), options), "staged"
    if history:
        return scan_history(_repository(paths, "--history"), since, options), "history"
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageFailure(f"{printable(missing[0])} does not exist")
    return scan_paths(list(paths) or ["."], options), "paths"


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--staged", is_flag=True,
              help="Scan the staged content of the files about to be committed.")
@click.option("--history", is_flag=True,
              help="Scan every blob in the history of every ref, once per blob.")
@click.option("--since", metavar="REV",
              help="With --history: only what was added after revision REV.")
@format_option("text", "json", "sarif")
@click.option("--baseline", "baseline_file", metavar="FILE",
              help="Report only findings whose fingerprint FILE does not hold.")
@click.option("--update-baseline", "update_file", metavar="FILE",
              help="Write every current finding's fingerprint to FILE (never the secret).")
@click.option("--max-size", default=f"{DEFAULT_MAX_SIZE // 1_000_000}M", show_default=True,
              metavar="SIZE", help="Skip files larger than this (e.g. 500k, 2M).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Skip paths or file names matching GLOB (repeat for more).")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes for large scans (0: one per CPU).")
@click.option("--min-confidence", type=click.Choice(CONFIDENCES), default="low",
              show_default=True,
              help="Report (and fail on) only findings at least this sure; the default "
                   "reports everything, `low` included.")
@click.option("--verify", is_flag=True,
              help="Ask each found key's provider whether it is live (online; the key goes "
                   "only to the provider's own API, and is never shown): live, revoked or "
                   "unknown.")
@click.option("--report", "report_url", metavar="URL",
              help="Send each keyturn key found (checksum-valid) to the deployment at URL "
                   "(POST URL/v1/leaks), which revokes it by its leak_action: quarantined "
                   "before the push. https, or http to loopback.")
def scan(paths: tuple[str, ...], staged: bool, history: bool, since: str | None, fmt: str,
         baseline_file: str | None, update_file: str | None, max_size: str,
         exclude: tuple[str, ...], jobs: int, min_confidence: Confidence, verify: bool,
         report_url: str | None) -> None:
    """Find API keys and other secrets before they land in git.

    PATH (default: the current directory) is scanned as git would commit it: tracked files
    and untracked ones no .gitignore rule covers. Keys of keyturn and of catalogued providers
    are found by shape and checksum; values assigned to secret-looking names by entropy; and
    .env files that git tracks or does not ignore are reported. Exit status: 0 clean, 1 a
    finding not in the baseline or a file that could not be read, 2 bad usage, 3 the scan
    itself failed (its output, if any, is not to be trusted). Put `--` before file names
    that could start with a dash.
    """
    reporter = None
    if report_url is not None:
        require("doctor", "keyturn scan --report", "httpx")
        try:
            reporter = LeakReporter(checked_report_url(report_url))
        except InvalidValue as exc:
            raise UsageFailure(str(exc)) from None
    try:
        _scan(paths, staged, history, since, fmt, baseline_file, update_file, max_size,
              exclude, jobs, min_confidence, verify, reporter)
    except (click.ClickException, KeyturnError):  # one line and its own exit code, in main
        raise
    except Exception as exc:  # any failure must not read as "no secrets"
        click.echo(printable(f"error: the scan failed ({type(exc).__name__}: {exc}); "
                             "nothing it printed is complete. Please report this."), err=True)
        raise SystemExit(3) from None


def _scan(paths: tuple[str, ...], staged: bool, history: bool, since: str | None, fmt: str,
          baseline_file: str | None, update_file: str | None, max_size: str,
          exclude: tuple[str, ...], jobs: int, min_confidence: Confidence, verify: bool,
          reporter: LeakReporter | None = None) -> None:
    if staged and history:
        raise UsageFailure("use --staged or --history, not both")
    if since and not history:
        raise UsageFailure("--since only applies to --history")
    if verify:
        require("doctor", "keyturn scan --verify")
    known_set = None
    salt = DEFAULT_SALT
    try:
        if baseline_file:
            known_set = baselines.load(Path(baseline_file))
            salt = known_set.salt
        elif update_file and Path(update_file).exists():
            salt = baselines.load(Path(update_file)).salt  # keep fingerprints stable
        elif update_file:
            salt = baselines.new_salt()
    except baselines.BaselineError as exc:
        raise UsageFailure(str(exc)) from None
    if update_file and not Path(update_file).absolute().parent.is_dir():
        # Said before the scan, which can take minutes, rather than when writing after it.
        raise UsageFailure(f"cannot write baseline {update_file!r}: its folder does not exist")
    # Below the threshold a finding is dropped whole: not verified, not shown, not failing,
    # not baselined.
    options = Options(salt=salt, max_size=_size(max_size), jobs=jobs, excludes=exclude,
                      min_confidence=min_confidence, verify=verify, report=reporter)
    try:
        result, mode = _run(paths, staged, history, since, options)
    except GitError as exc:
        raise UsageFailure(f"git: {exc}") from None
    finally:
        if reporter is not None:
            reporter.close()
    if reporter is not None:
        _reported(reporter)
    found = sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.code))
    known = [f for f in found if known_set is not None and f in known_set]
    new = [f for f in found if f not in known]
    if update_file:
        try:
            count = baselines.save(Path(update_file), found, salt)
        except OSError as exc:
            raise UsageFailure(f"cannot write baseline {update_file!r}: {exc.strerror}") from None
        click.echo(f"wrote {count} fingerprint{'s' if count != 1 else ''} to {update_file}",
                   err=True)
    # Rendered whole before a byte is written: output is complete or absent, never cut.
    if fmt == "json":
        rendered = json.dumps(to_json(result, new, len(known), mode), indent=2, default=str)
    elif fmt == "sarif":
        rendered = json.dumps(to_sarif(new, known, with_baseline=known_set is not None), indent=2)
    else:
        _show(result, new, len(known))
        rendered = None
    if rendered is not None:
        click.echo(rendered)
    if (new and not update_file) or result.unreadable:
        raise SystemExit(1)


def _reported(reporter: LeakReporter) -> None:
    """What --report did, on stderr (stdout may be JSON or SARIF)."""
    if reporter.sent:
        plural = "s" if reporter.sent != 1 else ""
        click.echo(f"reported {reporter.sent} keyturn key{plural} to {reporter.url} "
                   "(its leak_action applies: revoked by default)", err=True)
    if reporter.failed:
        click.echo(f"warning: {len(reporter.failed)} report(s) to {reporter.url} failed "
                   f"({reporter.failed[0]}); revoke the key yourself", err=True)


def _show(result: Result, new: list[Exposure], known: int) -> None:
    styled = styled_output()
    for finding in new:
        for text, style in finding_lines(finding):
            echo_styled(text, style if styled else "")
    for text in unreadable_lines(result):
        click.echo(text, err=True)
    line = summary(result, new, known)
    echo_styled(line, ("bold red" if new else "green") if styled else "")
