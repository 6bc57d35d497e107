"""Every commonly leaked kind of secret, found in a tree, in staged changes and in history.

Each sample is made here the way its issuer makes it (a fresh RSA key, a signed JWT, a
storage connection string with a random account key), written into a real git repository
and found through the public scans, with its mask and never its value in the report.
"""

from __future__ import annotations

import pytest

from keyturn.scan import Options, Result, scan_history, scan_paths, scan_staged
from tests.scan import keygen
from tests.scan.repo import Repo

SAMPLES = keygen.family_samples()
FAMILIES = sorted(SAMPLES)
OPTIONS = Options(jobs=1)


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    repo = Repo(tmp_path_factory.mktemp("families") / "repo")
    for family in FAMILIES:  # committed: the history holds them
        name, text = SAMPLES[family]
        repo.write(f"committed/{family}/{name}", text)
    repo.commit("leaks")
    fresh = keygen.family_samples()  # new values, staged only
    for family in FAMILIES:
        name, text = fresh[family]
        repo.write(f"staged/{family}/{name}", text)
    repo.git("add", "staged")
    return {
        "tree": scan_paths([str(repo.root / "committed")], OPTIONS),
        "history": scan_history(repo.root, None, OPTIONS),
        "staged": scan_staged(repo.root, OPTIONS),
    }


def _in(result: Result, family: str) -> list[str]:
    return [f.code for f in result.findings if f"/{family}/" in f"/{f.path}"]


@pytest.mark.parametrize("mode", ["tree", "history", "staged"])
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_found_in_each_mode(scans, family: str, mode: str) -> None:
    codes = _in(scans[mode], family)
    assert codes, f"{family} not found in {mode}"
    assert set(codes) <= {"leaked_provider_key", "possible_secret"}


def test_reports_hold_masks_never_the_secrets(scans) -> None:
    for result in scans.values():
        for finding in result.findings:
            shown = " ".join(map(str, finding.as_dict().values()))
            for name, text in SAMPLES.values():
                for line in text.splitlines():
                    value = line.split("=", 1)[-1].strip().strip('"')
                    if len(value) >= 24 and "BEGIN" not in value:
                        assert value not in shown, name
