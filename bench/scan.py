"""Scan benchmark: keyturn scan against detect-secrets on the same tree, in one run.

The tree is a copy of (part of) this virtual environment's site-packages, which holds no
real secrets, plus a generated folder where keys of every catalogued shape are planted
among near-misses (wrong checksum, wrong length, placeholders, documentation examples) and
ordinary code. Prints, for each tool: wall time, MB/s over the tree's text bytes, and
precision and recall on the planted keys; and the speed ratio.

detect-secrets comes from PyPI into its own virtual environment (bench/.venv-scan, made on
first run); it is not a dependency of keyturn. Not run in CI.

Run: ``.venv/bin/python bench/scan.py [--mb 10] [--jobs 0]`` (``--mb 0``: all of it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Python puts this script's folder first on the path, where bench/http.py would shadow the
# standard library's http; the project root instead (tests.scan.keygen draws the keys).
sys.path[0] = str(ROOT)

from keyturn._providers import PROVIDERS  # noqa: E402
from keyturn.scan.walker import BINARY_SUFFIXES, SKIP_DIRS, is_binary  # noqa: E402
from tests.scan import keygen  # noqa: E402

BENCH_VENV = ROOT / "bench" / ".venv-scan"
FILLER = '''def handler(request, settings):
    """Look the user up and return their profile."""
    user = settings.store.get(request.user_id)
    if user is None:
        raise KeyError(request.user_id)
    token_ttl = settings.token_ttl  # seconds
    return {"id": user.id, "name": user.name, "ttl": token_ttl}

'''


def detect_secrets() -> Path:
    exe = BENCH_VENV / "bin" / "detect-secrets"
    if not exe.exists():
        print("installing detect-secrets into bench/.venv-scan ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(BENCH_VENV)
        (BENCH_VENV / ".gitignore").write_text("*\n")
        subprocess.run([BENCH_VENV / "bin" / "pip", "install", "-q", "detect-secrets"],
                       check=True)
    return exe


def copy_site_packages(target: Path, limit: int) -> None:
    import site

    source = Path(site.getsitepackages()[0])
    copied = 0
    for top, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(top) / name
            if path.suffix.lower() in BINARY_SUFFIXES:
                continue
            data = path.read_bytes()
            if is_binary(data) or len(data) > 1_000_000:
                continue
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            copied += len(data)
            if limit and copied >= limit:
                return


def plant(target: Path, rng: random.Random) -> set[tuple[str, int]]:
    """Files with planted keys and decoys; returns (path, line) of every real key."""
    env_of = {p.id: (p.env[0] if p.env else "API_KEY") for p in PROVIDERS}
    planted: set[tuple[str, int]] = set()
    keys = keygen.provider_keys() + keygen.keyturn_keys()
    for round_ in range(3):
        for i, key in enumerate(keys):
            name = env_of.get(key.provider_id, "KEYTURN_KEY")
            head = FILLER * rng.randint(2, 40)
            line = head.count("\n") + 1
            path = f"planted/{key.provider_id}/m{round_}_{i}.py"
            fresh = keygen.provider_keys()[i].key if i < len(keygen.SECRET_TYPES) else (
                keygen.keyturn_keys()[i - len(keygen.SECRET_TYPES)].key)
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_text(f'{head}{name} = "{fresh}"\n{FILLER * 3}')
            planted.add((path, line))
    decoys = keygen.near_misses() + keygen.identifiers()
    for i, decoy in enumerate(decoys):
        path = target / f"planted/decoys/d{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'{FILLER * 5}api_key = "{decoy}"\nvalue = "{decoy}"\n{FILLER}')
    return planted


def text_bytes(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())


def run_keyturn(tree: Path, jobs: int) -> tuple[float, set[tuple[str, int]], int]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "keyturn", "scan", ".", "--format", "json", "-j", str(jobs)],
        cwd=tree, capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - start
    findings = json.loads(done.stdout)["findings"]
    hits = {(f["path"], f["line"]) for f in findings if f["path"].startswith("planted/")}
    return elapsed, hits, sum(1 for f in findings if not f["path"].startswith("planted/"))


def run_detect_secrets(tree: Path, exe: Path) -> tuple[float, set[tuple[str, int]], int]:
    start = time.perf_counter()
    done = subprocess.run([exe, "scan", "--all-files", "."], cwd=tree, capture_output=True,
                          text=True, check=True)
    elapsed = time.perf_counter() - start
    results = json.loads(done.stdout)["results"]
    hits = {(path, r["line_number"]) for path, rs in results.items() for r in rs
            if path.startswith("planted/")}
    other = sum(len(rs) for path, rs in results.items() if not path.startswith("planted/"))
    return elapsed, hits, other


def scores(hits: set[tuple[str, int]], planted: set[tuple[str, int]]) -> tuple[float, float]:
    true = len(hits & planted)
    precision = true / len(hits) if hits else 1.0
    return precision, true / len(planted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10,
                        help="MB of site-packages to copy into the tree (0: all)")
    parser.add_argument("--jobs", type=int, default=0, help="keyturn worker processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-detect-secrets", action="store_true")
    args = parser.parse_args()
    exe = None if args.skip_detect_secrets else detect_secrets()
    with tempfile.TemporaryDirectory(prefix="keyturn-scan-bench-") as tmp:
        tree = Path(tmp)
        copy_site_packages(tree / "site", int(args.mb * 1_000_000))
        planted = plant(tree, random.Random(args.seed))
        size = text_bytes(tree) / 1e6
        print(f"tree: {size:.1f} MB of text, {len(planted)} planted keys "
              f"({len(keygen.SECRET_TYPES)} provider shapes + keyturn keys, 3 of each)")
        empty = tree / "empty"
        empty.mkdir()
        startup = min(run_keyturn(empty, 1)[0] for _ in range(3))
        rows = []
        kt = run_keyturn(tree, args.jobs)
        rows.append(("keyturn scan", *kt))
        kt1 = run_keyturn(tree, 1)
        rows.append(("keyturn scan -j 1", *kt1))
        if exe is not None:
            rows.append(("detect-secrets 1.5", *run_detect_secrets(tree, exe)))
        print(f"{'tool':<20}{'seconds':>9}{'MB/s':>9}{'precision':>11}{'recall':>8}"
              f"{'findings in site-packages':>28}")
        for name, elapsed, hits, other in rows:
            precision, recall = scores(hits, planted)
            print(f"{name:<20}{elapsed:>9.2f}{size / elapsed:>9.2f}{precision:>11.3f}"
                  f"{recall:>8.3f}{other:>28}")
        print(f"keyturn start-up (an empty folder): {startup:.2f} s; without it keyturn scans "
              f"{size / (kt[0] - startup):.1f} MB/s ({size / (kt1[0] - startup):.1f} MB/s in "
              "one process)")
        if exe is not None:
            print(f"speed ratio keyturn / detect-secrets: {rows[2][1] / rows[0][1]:.1f}x "
                  f"(single process: {rows[2][1] / rows[1][1]:.1f}x)")
        missed = planted - kt[1]
        if missed:
            print("keyturn missed:", sorted(missed)[:10])
    shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
