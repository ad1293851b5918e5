"""How much an install of ttsfleet (with an extra) adds to a fresh virtual environment's site-packages.

Stands in for an image's size where no Docker engine runs: the images install the same wheels into
python:3.11-slim, so what pip adds to site-packages is what the install layer carries. Builds the
wheel from a source tree (a copy, so the tree gets no build/ folder), installs it into one fresh venv
per install spec, and prints a Markdown table: the spec, the distributions it brought and the
megabytes (10^6 bytes) of files it added, pip's own bootstrap excluded.

    .venv/bin/python scripts/install_size.py gateway operator
    git archive main | tar -x -C /tmp/before
    .venv/bin/python scripts/install_size.py --source /tmp/before ''

An empty spec installs `ttsfleet` without extras. `--uninstall` removes distributions after the
install, as Dockerfiles once did. Needs PyPI (pip's cache under ~/.cache/pip makes reruns quick).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(source: Path, workdir: Path) -> Path:
    """The ttsfleet wheel of `source`, built from a copy of its package files."""
    copy = workdir / "source"
    shutil.copytree(source / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(source / name, copy / name)
    dist = workdir / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(copy)], check=True
    )
    (wheel,) = dist.glob("ttsfleet-*.whl")
    return wheel


def site_packages(environment: Path) -> Path:
    (found,) = environment.glob("lib/python*/site-packages")
    return found


def tree_bytes(directory: Path) -> int:
    """Apparent size of every regular file below `directory` (what an image layer's tar holds)."""
    files = (path for path in directory.rglob("*") if path.is_file() and not path.is_symlink())
    return sum(path.lstat().st_size for path in files)


def distributions(environment: Path) -> set[str]:
    return {path.name.split("-")[0].lower() for path in site_packages(environment).glob("*.dist-info")}


def measure(wheel: Path, spec: str, uninstall: list[str], workdir: Path) -> tuple[int, int]:
    """Distributions added and bytes added to site-packages by installing `ttsfleet[spec]`."""
    environment = workdir / f"venv-{spec or 'all'}"
    venv.create(environment, with_pip=True, clear=True)
    python = environment / "bin" / "python"
    baseline_bytes, baseline = tree_bytes(site_packages(environment)), distributions(environment)
    requirement = f"ttsfleet[{spec}]" if spec else "ttsfleet"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--find-links", str(wheel.parent), requirement], check=True)
    if uninstall:
        subprocess.run([*pip, "uninstall", "--yes", *uninstall], check=True)
    added = distributions(environment) - baseline
    return len(added), tree_bytes(site_packages(environment)) - baseline_bytes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("specs", nargs="+", help="extras to install, one venv each ('' for none)")
    parser.add_argument("--source", type=Path, default=ROOT, help="source tree to build (default: this one)")
    parser.add_argument("--uninstall", nargs="*", default=[], help="distributions removed after the install")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttsfleet-size-") as scratch:
        workdir = Path(scratch)
        wheel = build_wheel(arguments.source, workdir)
        print("| install | distributions | site-packages added (MB) |")
        print("|---|---:|---:|")
        for spec in arguments.specs:
            count, added = measure(wheel, spec, arguments.uninstall, workdir)
            label = f"ttsfleet[{spec}]" if spec else "ttsfleet"
            if arguments.uninstall:
                label += f" minus {', '.join(arguments.uninstall)}"
            print(f"| `{label}` | {count} | {added / 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
