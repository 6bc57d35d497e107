"""keyturn scan on the shared scan corpus: recall, precision and speed beside the peers'.

The corpus is built from the labelled samples gitleaks and trufflehog wrote for their own
detectors; it lives outside this repository (``shared/scan-corpus``, beside the checkout)
and is never copied in. This script runs its generator into a temporary folder, scans the
tree with the real ``keyturn scan`` command, scores the findings against the manifest the
way the corpus' own scorer does (a finding on a line of a sample counts for that sample;
a finding on no sample's line is a false positive), and prints:

- recall on the positives (T), precision (T found over T found + negatives F flagged +
  findings on no sample), near-misses (N) flagged, per family, beside each peer, naming
  any family below 0.8 recall that a peer reaches (the acceptance bar);
- MB/s on a tree of ordinary source (text files of this virtual environment's
  site-packages, at least 20 MB), median and best of the runs, with gitleaks' figure from
  ``results/peers.json`` (gitleaks is not built here) and the ratio; and, since a shared
  machine's load swamps wall time, the same tree scanned by the keyturn commit peers.json
  measured (``--baseline``), interleaved with this checkout: the ratio of their CPU
  seconds carries peers.json's keyturn figure over to this checkout.

Run: ``.venv/bin/python bench/scan_corpus.py [--corpus DIR] [--runs 3] [--mb 33]``.
Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEYTURN = Path(sys.executable).with_name("keyturn")
TEXT_SUFFIXES = frozenset([
    ".py", ".pyi", ".txt", ".json", ".md", ".cfg", ".toml", ".yaml", ".rst", ".html", ".js",
    ".css", ".c", ".h", ".xml", ".ini",
])


def find_corpus(given: str | None) -> Path:
    candidates = [Path(given)] if given else [
        Path(os.environ.get("KEYTURN_SCAN_CORPUS", "")),
        *(parent / "shared" / "scan-corpus" for parent in ROOT.parents),
    ]
    for candidate in candidates:
        if candidate.name and (candidate / "gen.py").exists():
            return candidate
    sys.exit("scan corpus not found: pass --corpus DIR (the folder holding gen.py)")


def generate(corpus: Path, dest: Path) -> tuple[Path, list[dict[str, Any]]]:
    subprocess.run([sys.executable, str(corpus / "gen.py"), str(dest)], check=True,
                   capture_output=True)
    manifest = [json.loads(line) for line in (dest / "manifest.jsonl").open()]
    return dest / "tree", manifest


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: list[float] = []  # CPU seconds of each scan: on a busy machine, steadier than wall time


def scan(tree: Path, jobs: int) -> tuple[float, list[dict[str, Any]], int]:
    started, cpu = time.perf_counter(), _cpu()
    done = subprocess.run([str(KEYTURN), "scan", ".", "--format", "json", "--jobs", str(jobs)],
                          cwd=tree, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    CPU.append(_cpu() - cpu)
    if done.returncode not in (0, 1):
        sys.exit(f"keyturn scan failed ({done.returncode}): {done.stderr}")
    out = json.loads(done.stdout)
    return wall, out["findings"], out["bytes"]


def score(manifest: list[dict[str, Any]], findings: list[dict[str, Any]]) -> dict[str, Any]:
    at = {}
    for index, sample in enumerate(manifest):
        for line in range(sample["line"], sample["end_line"] + 1):
            at[(sample["file"], line)] = index
    found: set[int] = set()
    stray = 0
    for finding in findings:
        if not finding["line"]:
            continue
        index = at.get((finding["path"], finding["line"]))
        if index is None:
            stray += 1
        else:
            found.add(index)
    labels = Counter(manifest[i]["label"] for i in found)
    total = Counter(s["label"] for s in manifest)
    tp, fp = labels["T"], labels["F"] + stray
    families: dict[str, list[int]] = {}
    for index, sample in enumerate(manifest):
        if sample["label"] == "T":
            tally = families.setdefault(sample["family"], [0, 0])
            tally[0] += index in found
            tally[1] += 1
    return {
        "T": total["T"], "tp": tp, "fp_F": labels["F"], "F": total["F"], "stray": stray,
        "n_flagged": labels["N"], "N": total["N"],
        "recall": tp / total["T"], "precision": tp / (tp + fp) if tp + fp else 0.0,
        "family": families,
    }


def ordinary_tree(dest: Path, megabytes: float) -> int:
    """Text files of site-packages (no secrets), copied until ``megabytes`` are there."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    wanted, total = megabytes * 1e6, 0
    for path in sorted(site.rglob("*")):
        if total >= wanted:
            break
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or path.is_symlink():
            continue
        target = dest / path.relative_to(site)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        total += path.stat().st_size
    return total


def _cli_cpu(tree: Path, src: Path | None) -> tuple[float, float]:
    """(wall, CPU seconds) of one `keyturn scan` of ``tree`` by the keyturn in ``src`` (None:
    this checkout), started the same way for both so that only the code differs."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    code = ("import sys; from keyturn.cli import main; "
            "sys.argv = ['keyturn', 'scan', '.', '--format', 'json']; main()")
    started, cpu = time.perf_counter(), _cpu()
    subprocess.run([sys.executable, "-P", "-c", code], cwd=tree, env=env, capture_output=True,
                   check=False)
    return time.perf_counter() - started, _cpu() - cpu


def calibrated(tree: Path, peers: dict[str, Any], rev: str, runs: int) -> None:
    """keyturn's own entry in peers.json (commit ``rev``) measured beside this checkout in
    the same run, interleaved: this checkout's speed is that entry's MB/s times the ratio
    of their CPU seconds, which a loaded machine slows alike. gitleaks cannot be built
    here; its peers.json figure came from the same session as keyturn's entry."""
    with tempfile.TemporaryDirectory(prefix="keyturn-baseline-") as old:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        then, now = [], []
        for _ in range(runs):
            then.append(_cli_cpu(tree, Path(old) / "src")[1])
            now.append(_cli_cpu(tree, None)[1])
    ratio = min(then) / min(now)
    base = peers["tools"]["keyturn"]["bigtree_MB_per_s"]
    gitleaks = peers["tools"]["gitleaks"]["bigtree_MB_per_s"]
    print(f"same run, least CPU of {runs}: keyturn {rev} {min(then):.2f} s, this checkout "
          f"{min(now):.2f} s; peers.json has {rev} at {base:.1f} MB/s, so this checkout "
          f"~{base * ratio:.1f} MB/s = {base * ratio / gitleaks:.2f}x gitleaks ({gitleaks:.1f})")


def _family_table(mine: dict[str, Any], peers: dict[str, Any]) -> None:
    """Recall per family beside the peers'. The acceptance bar is 0.8 where a peer reaches
    it: a family below it is flagged, and named at the end if a peer does reach it."""
    names = ["keyturn", *peers]
    print(f"\n{'family':24s}" + "".join(f"{n[:14]:>16s}" for n in names))
    families = sorted(mine["family"], key=lambda f: (-mine["family"][f][1], f))
    short = []
    for family in families:
        hit, total = mine["family"][family]
        row = f"{family[:24]:24s}{hit:>9d}/{total:<6d}"
        reached = False
        for name, peer in peers.items():
            p_hit, p_total = peer.get("family", {}).get(family, [0, 0])
            row += f"{p_hit:>9d}/{p_total:<6d}"
            # peers.json's own keyturn entry is an earlier keyturn, not a peer
            reached |= name != "keyturn" and p_total > 0 and p_hit / p_total >= 0.8
        below = total > 0 and hit / total < 0.8
        if below and reached and family != "other":
            short.append(family)
        flag = "" if not below else "  < 0.8, a peer reaches it" if reached else "  < 0.8"
        print(row + flag)
    print(f"\nnamed families below 0.8 where a peer reaches it: {', '.join(short) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="the scan-corpus folder (holding gen.py)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each scan")
    parser.add_argument("--mb", type=float, default=33.0, help="size of the ordinary tree")
    parser.add_argument("--jobs", type=int, default=0, help="keyturn scan --jobs")
    parser.add_argument("--no-speed", action="store_true", help="skip the ordinary tree")
    parser.add_argument("--baseline", default="e9e9e2d",
                        help="the keyturn commit results/peers.json measured ('' to skip)")
    args = parser.parse_args()
    corpus = find_corpus(args.corpus)
    peers = json.loads((corpus / "results" / "peers.json").read_text())
    with tempfile.TemporaryDirectory(prefix="keyturn-corpus-") as work:
        tree, manifest = generate(corpus, Path(work) / "corpus")
        walls = []
        for _ in range(args.runs):
            wall, findings, _size = scan(tree, args.jobs)
            walls.append(wall)
        mine = score(manifest, findings)
        print(f"corpus: {mine['T']} T, {mine['F']} F, {mine['N']} N; keyturn scan "
              f"{statistics.median(walls):.2f} s (median of {args.runs})")
        print(f"\n{'tool':26s}{'recall':>8s}{'precision':>11s}{'FP on F':>9s}{'stray':>7s}"
              f"{'N flagged':>11s}")
        rows = {"keyturn (this tree)": mine} | {
            name: data for name, data in peers["tools"].items()
        }
        for name, data in rows.items():
            print(f"{name[:26]:26s}{data['recall']:8.3f}{data['precision']:11.3f}"
                  f"{data['fp_F']:>5d}/{data['F']:<3d}{data['stray']:>7d}"
                  f"{data['n_flagged']:>6d}/{data['N']}")
        _family_table(mine, {k: v for k, v in peers["tools"].items()})
        if args.no_speed:
            return
        big = Path(work) / "ordinary"
        size = ordinary_tree(big, args.mb)
        speeds = []
        CPU.clear()
        for _ in range(args.runs):
            wall, found, scanned = scan(big, args.jobs)
            speeds.append(scanned / 1e6 / wall)
        per_cpu = scanned / 1e6 / statistics.median(CPU)
        gitleaks = peers["tools"]["gitleaks"]["bigtree_MB_per_s"]
        median, best = statistics.median(speeds), max(speeds)
        print(f"\nordinary source: {size / 1e6:.1f} MB copied, {scanned / 1e6:.1f} MB scanned, "
              f"{len(found)} findings; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs")
        print(f"keyturn {median:.1f} MB/s median, {best:.1f} best of {args.runs} "
              f"({', '.join(f'{s:.1f}' for s in speeds)}); gitleaks {gitleaks:.1f} MB/s, the "
              f"best of its runs (results/peers.json, not built here): ratio "
              f"{median / gitleaks:.2f}x median, {best / gitleaks:.2f}x best")
        print(f"CPU: {statistics.median(CPU):.2f} s for the tree, {per_cpu:.1f} MB per CPU-second "
              "(wall time on a shared machine says more about the others' load)")
        if args.baseline:
            calibrated(big, peers, args.baseline, args.runs)


if __name__ == "__main__":
    main()
