"""The sdist and the wheel, as built: every data file inside, metadata that checks, one
version, and extras that say what they install."""

from __future__ import annotations

import email.parser
import importlib.metadata
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile

from keyturn import __version__
from keyturn._extras import EXTRAS
from tests.packaging.conftest import ROOT, Artifacts

SOURCE = ROOT / "src" / "keyturn"


def data_files() -> set[str]:
    """Every file of the package that is not Python: templates, static files, migrations,
    the catalogues and rules (TOML), py.typed. Each must be shipped."""
    return {
        p.relative_to(SOURCE.parent).as_posix()
        for p in SOURCE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }


def test_the_wheel_and_the_sdist_carry_every_data_file(artifacts: Artifacts) -> None:
    expected = data_files()
    assert {"keyturn/outcomes.toml", "keyturn/providers.toml", "keyturn/scan/rules.toml",
            "keyturn/py.typed", "keyturn/ui/templates/base.html",
            "keyturn/store/migrations/sqlite/0001_initial.sql"} <= expected
    wheel = set(zipfile.ZipFile(artifacts.wheel).namelist())
    assert expected <= wheel, sorted(expected - wheel)
    top = f"keyturn-{__version__}/src/"
    with tarfile.open(artifacts.sdist) as sdist:
        names = sdist.getnames()
    shipped = {n.removeprefix(top) for n in names}
    assert expected <= shipped, sorted(expected - shipped)
    assert f"keyturn-{__version__}/pyproject.toml" in names


def test_the_metadata_checks_and_names_one_version(artifacts: Artifacts) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(artifacts.wheel),
         str(artifacts.sdist)], capture_output=True, text=True, timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    name = f"keyturn-{__version__}.dist-info/METADATA"
    metadata = email.parser.Parser().parsestr(
        zipfile.ZipFile(artifacts.wheel).read(name).decode()
    )
    assert metadata["Version"] == __version__
    assert artifacts.wheel.name.startswith(f"keyturn-{__version__}-")
    assert artifacts.sdist.name == f"keyturn-{__version__}.tar.gz"
    # The version is written once, in keyturn/__init__.py; pyproject.toml reads it there.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    core = [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]
    assert {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0] for r in core} == {
        "click", "ahocorasick-rs"
    }
    assert set(EXTRAS) | {"all"} <= set(metadata.get_all("Provides-Extra", []))


def distribution(requirement: str) -> str:
    """The normalized name (PEP 503) of the distribution a requirement names."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0]).lower()


def test_each_extra_checks_for_the_packages_it_installs() -> None:
    """keyturn._extras (what a missing extra's one line checks) and pyproject.toml (what the
    extra installs) name the same packages."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    owners = importlib.metadata.packages_distributions()
    for extra, modules in EXTRAS.items():
        checked = {distribution(owners[m][0]) for m in modules}
        assert checked == {distribution(r) for r in extras[extra]}, extra
    assert {distribution(r) for r in extras["all"]} == {"keyturn"}
    assert set(re.findall(r"\w+", extras["all"][0].partition("[")[2])) == {
        "serve", "postgres", "redis", "doctor"
    }
