"""Lay out the `ttsfleet` import package as one directory tree of symlinks, for mypy and import-linter.

The sub-packages live in top-level folders (pyproject's `package-dir`); setuptools maps them for
installs, but static tools look for `ttsfleet/emulator/…` on disk. This builds `build/pkg/ttsfleet`
with a link per entry, following the same mapping, so they see what an installed wheel holds.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(target: Path) -> Path:
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    if target.exists():
        shutil.rmtree(target)
    package = target / "ttsfleet"
    package.mkdir(parents=True)
    for entry in (ROOT / mapping["ttsfleet"]).iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in mapping.items():
        if name != "ttsfleet":
            (package / name.split(".", 1)[1]).symlink_to(ROOT / folder, target_is_directory=True)
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "pkg"))
