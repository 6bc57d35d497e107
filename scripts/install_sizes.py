"""What `pip install keyturn` and each extra install: packages and size, in new environments.

    .venv/bin/python scripts/install_sizes.py        # a Markdown table (docs/install.md)

The wheel is built from this tree; each environment is new, outside the repository, and
filled by pip as a user's would be. Counted: distributions besides keyturn (pip and
setuptools are not installed), and the size of site-packages (keyturn included).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(wheel: Path, extra: str, work: Path) -> tuple[list[str], int]:
    env = work / (extra or "core")
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    spec = f"keyturn[{extra}] @ {wheel.as_uri()}" if extra else str(wheel)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",  # noqa: S603
                    "--disable-pip-version-check", spec], check=True, cwd=work)
    listed = subprocess.run(  # noqa: S603
        [str(python), "-c", "import importlib.metadata as m\n"
         "for d in m.distributions(): print(d.metadata['Name'])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    site = next(env.glob("lib/python3*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    return sorted(n for n in listed if n.lower() != "keyturn"), size


def main() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    shown = ["", *(e for e in extras if e not in ("dev", "bench"))]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir",  # noqa: S603
                        str(work / "dist"), str(ROOT)], check=True, capture_output=True)
        (wheel,) = (work / "dist").glob("*.whl")
        print(f"| install | third-party packages | size (Python {sys.version_info[0]}."
              f"{sys.version_info[1]}) |\n| --- | ---: | ---: |")
        for extra in shown:
            names, size = measure(wheel, extra, work)
            name = f"`keyturn[{extra}]`" if extra else "`keyturn`"
            listed = f" ({', '.join(names)})" if len(names) <= 5 else ""
            print(f"| {name} | {len(names)}{listed} | {size / 1e6:.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
